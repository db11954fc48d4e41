//! The durable writer: preallocated segments written in place, pipelined group commit, a chain
//! resumed on open, signed checkpoints.
//!
//! **Segments, like a write-ahead log.** Records go to segment files of at most
//! `segment_bytes`, one or more per UTC day (`audit-YYYY-MM-DD.jsonl`, then
//! `audit-YYYY-MM-DD.1.jsonl`, …). A background thread prepares the next segment ahead of time:
//! a hidden spare file reserved (`posix_fallocate`) and filled with zeros, synced, then renamed.
//! Records overwrite those zeros in place, so a sync flushes data only: the file's size and block
//! map do not change, and `fdatasync` has no metadata to write (on this kind of disk about half
//! the cost of an append that grows the file; `BENCHMARKS.md`). A segment therefore ends in zeros
//! after its last record: JSON lines never contain a NUL byte, so the first NUL marks the end of
//! the data, and `verify` tells "preallocated space follows" from "torn record". When the disk
//! cannot hold a spare (`ENOSPC`), the writer falls back to a plain file that grows with each
//! write (correct, only slower), so the service still starts on a small disk and a full disk
//! still ends in 30021.
//!
//! **Pipelined group commit.** Two threads: the *writer* takes every queued append, chains and
//! writes it (into the page cache) and hands the waiters to the *syncer*; the syncer runs one
//! `fdatasync` over everything written so far, then answers every waiter it covered. While one
//! sync is in flight the writer is already writing the next round, so a record waits at most for
//! the sync in flight plus its own, and the disk is never idle while records wait.
//!
//! **Failures.** A failed write undoes that round's bytes (zeros over preallocated space, a cut
//! for a growing file) and answers its appends with an error. A failed sync fails every append
//! not yet durable; the writer then undoes everything after the last durable record and goes on
//! from there. So no record that was not durably written is ever referenced by a later one.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use kbi_core::domain::Verdict;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use super::record::{
    line_hash, segment_name, segment_of, AuditRecord, ChainHash, RequestCtx, RequestLines,
};
use super::AuditError;

/// Name of the lock file that keeps a second process from writing the same directory (two
/// writers would fork the chain).
pub(crate) const LOCK_FILE: &str = ".audit.lock";
/// The next segment, prepared ahead (zero-filled, synced); never holds records.
const SPARE: &str = ".audit-spare";
/// A spare being prepared.
const SPARE_TMP: &str = ".audit-spare.tmp";
/// No audit line is shorter (the `prev` hash alone is 64 bytes, `time` 24): bounds how many
/// records a torn region can have held, for the sequence numbers set aside with it.
const MIN_RECORD_BYTES: u64 = 128;
/// Smallest segment accepted (tests use small ones to exercise rotation).
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// What the log tells whoever counts its work (the service's `kbi_audit_*` metrics). A trait, so
/// that the audit log does not depend on the telemetry above it; `telemetry` implements it for
/// its `Metrics`.
pub trait AuditObserver: std::fmt::Debug + Send + Sync {
    /// One group commit made `records` records durable in `duration`.
    fn audit_written(&self, records: u64, duration: Duration);
    /// One append was answered `wait` after it was queued.
    fn audit_waited(&self, wait: Duration);
    /// One write failed (the log stops accepting appends).
    fn audit_failed(&self);
    /// At open, the log held `records` fewer records than its own latest checkpoint vouched
    /// for (cut off while the service was down); the numbers are not reused.
    fn audit_missing_at_open(&self, _records: u64) {}
}

/// Default of [`AuditOptions::inline_sync_records`]: rounds of single questions (a handful of
/// records) and of small batches are synced where they were written; a round of larger batches
/// is worth overlapping with the writing of the next.
pub const DEFAULT_INLINE_SYNC_RECORDS: usize = 64;

/// How [`AuditLog::open`] sets the log up.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Where the `kbi_audit_*` metrics are recorded.
    pub metrics: Option<Arc<dyn AuditObserver>>,
    /// Most appends waiting for the writer; further appends wait for room (backpressure).
    pub queue: usize,
    /// Most records written in one round, so one round stays short.
    pub max_batch_records: usize,
    /// A round of at most this many records is synced by the writer thread itself, which then
    /// answers its appends: one thread hand-off less per round, as Redis writes and syncs on
    /// one thread (docs/performance.md). A larger round is handed to the syncer thread, so that
    /// the next round is written while it syncs. 0: every round goes to the syncer.
    pub inline_sync_records: usize,
    /// Size bound of a segment file (at least [`MIN_SEGMENT_BYTES`]); a record that does not
    /// fit in what is left of a segment starts the next one.
    pub segment_bytes: u64,
    /// Prepare segments ahead (zero-filled); `false`: segments are plain files that grow.
    pub preallocate: bool,
    /// Ed25519 key that signs checkpoints (PKCS#8 PEM); `None`: the key in the audit directory
    /// (generated on first use, with a warning).
    pub checkpoint_key: Option<PathBuf>,
    /// A checkpoint at least this often while records come in (and at every rotation and at
    /// close).
    pub checkpoint_interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            metrics: None,
            queue: 4096,
            max_batch_records: 50_000,
            inline_sync_records: DEFAULT_INLINE_SYNC_RECORDS,
            segment_bytes: 64 * 1024 * 1024,
            preallocate: true,
            checkpoint_key: None,
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// What a successful [`AuditLog::append`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// `seq` of the first record appended (0 when none were given).
    pub first_seq: u64,
    /// How many records were appended.
    pub count: usize,
}

/// Counters of the writer since open (tests and benches read them; Prometheus gets the
/// `kbi_audit_*` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records made durable.
    pub records: u64,
    /// Sync rounds that made records durable.
    pub batches: u64,
    /// Of those, the rounds the writer thread synced itself (see
    /// [`AuditOptions::inline_sync_records`]).
    pub inline_batches: u64,
    /// `fdatasync`/`fsync` calls on segments and, on segment creation, the directory.
    pub fsyncs: u64,
    /// Failed writes or syncs (every append they covered got an error).
    pub failures: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Segments that started from a prepared (zero-filled) spare.
    pub preallocated_segments: u64,
    /// Records the latest checkpoint vouched for that the log no longer held at open.
    pub records_missing_at_open: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    inline_batches: AtomicU64,
    fsyncs: AtomicU64,
    failures: AtomicU64,
    checkpoints: AtomicU64,
    preallocated_segments: AtomicU64,
    records_missing_at_open: AtomicU64,
}

type Reply = oneshot::Sender<Result<AppendReceipt, AuditError>>;

struct Job {
    records: Vec<Prepared>,
    done: Reply,
    /// When the append was handed over: a record's wait runs from here to its answer.
    queued: Instant,
}

/// A record serialised by the caller, up to where the log adds its place in the chain: the
/// JSON of the record without its final `,"seq":…,"prev":"…"}`. Serialising on the requests'
/// threads keeps the writer thread to chaining, hashing and writing, so it is not the
/// bottleneck of large batches. The line written is byte for byte `serde_json` of the record.
struct Prepared {
    date: NaiveDate,
    head: Vec<u8>,
}

/// How a record with `seq` 0 and an empty `prev` ends in JSON (the struct's last two fields).
const UNCHAINED_TAIL: &[u8] = br#","seq":0,"prev":""}"#;

/// A record that serde could not serialise (not expected: no maps, no I/O).
fn cannot_serialise(error: serde_json::Error) -> AuditError {
    AuditError::Corrupt {
        path: PathBuf::new(),
        line: None,
        detail: format!("cannot serialise a record: {error}"),
    }
}

fn prepare(mut record: AuditRecord) -> Result<Prepared, AuditError> {
    record.seq = 0;
    record.prev = String::new();
    let mut head = serde_json::to_vec(&record).map_err(cannot_serialise)?;
    if !head.ends_with(UNCHAINED_TAIL) {
        return Err(AuditError::Corrupt {
            path: PathBuf::new(),
            line: None,
            detail: "a record does not end with seq and prev".into(),
        });
    }
    head.truncate(head.len() - UNCHAINED_TAIL.len());
    Ok(Prepared {
        date: record.date(),
        head,
    })
}

/// The records of one request's verdicts, prepared (see [`RequestLines`]).
fn prepare_verdicts(
    ctx: &RequestCtx<'_>,
    verdicts: &[Verdict],
) -> Result<Vec<Prepared>, AuditError> {
    let lines = RequestLines::new(ctx).map_err(cannot_serialise)?;
    verdicts
        .iter()
        .map(|verdict| {
            Ok(Prepared {
                date: lines.date,
                head: lines.line(verdict).map_err(cannot_serialise)?,
            })
        })
        .collect()
}

/// A handle on the audit log; clone it freely. The writer stops when the last handle is
/// dropped, after finishing what was queued and writing a last checkpoint (dropping the last
/// handle waits for that).
///
/// **Files.** Records go to segments of the UTC date of their `time` (see the module). The log
/// never writes to an older day than the one it last wrote: a record stamped just before
/// midnight that reaches the writer after a record of the new day goes into the new day's
/// segment. The chain (`seq`, `prev`) runs on across segments and days.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Option<mpsc::Sender<Job>>,
    counters: Arc<Counters>,
    dir: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish the queued rounds and stop; waiting for it
        // releases the directory lock before a new `open` of the same directory.
        self.tx.take();
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating it if needed) the audit directory `dir`, takes its lock, resumes the
    /// chain from the newest segment and starts the writer, syncer and preparer threads.
    ///
    /// A torn tail (bytes after the last whole line: a write cut short by a crash) is moved to
    /// `<segment>.torn-<unix-ms>` beside the segment and cleared from it (zeroed in preallocated
    /// space, cut otherwise), with a warning. Those bytes were never acknowledged (appends
    /// complete only after the sync of complete lines), so no answer rests on them; the side
    /// file keeps the trace, and the sequence numbers they may hold are never used again. A last
    /// *complete* line that is not a valid record stops the open ([`AuditError::Corrupt`]):
    /// that is not a crash artefact, and the operator must look (`kbi-advice audit verify`).
    pub fn open(dir: impl AsRef<Path>, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, "create directory", e))?;
        private_dir(&dir);
        let lock = lock_dir(&dir)?;
        let segment_bytes = options.segment_bytes.max(MIN_SEGMENT_BYTES);
        // A spare left by an earlier run is used only if it is exactly what the preparer makes
        // (it renames a spare into place only once it is whole and synced): all zeros, of the
        // segment size. Anything else (half made, recycled, planted) is removed, never used.
        let spare_ok = options.preallocate && is_clean_spare(&dir.join(SPARE), segment_bytes);
        for name in [SPARE, SPARE_TMP] {
            if name == SPARE && spare_ok {
                continue;
            }
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(AuditError::io(&path, "remove", e))
                }
                _ => {}
            }
        }
        let counters = Arc::new(Counters::default());
        let mut resumed = resume(&dir)?;
        let checkpointer = Checkpointer::open(&dir, options.checkpoint_key.as_deref())?;
        // A log that ends before its own latest checkpoint was cut while the service was down
        // (`security-and-audit.md`: a sequence number is never reused). Starting after the
        // checkpoint keeps every number given out unique, and `audit verify` still reports the
        // records it vouched for as missing; the gap is shouted here and kept as a metric
        // (`kbi_audit_records_missing_at_open`, alert KbiAuditRecordsMissingAtOpen).
        let missing = checkpointer.last_seq.saturating_sub(resumed.seq);
        if missing > 0 {
            tracing::error!(
                dir = %dir.display(),
                last_seq = resumed.seq,
                checkpoint_seq = checkpointer.last_seq,
                missing,
                "audit log: the log ends before its latest signed checkpoint: records were cut \
                 off or deleted while the service was down; resuming after the checkpoint \
                 (numbers are never reused). Run `kbi-advice audit verify` and investigate"
            );
            resumed.next_floor = resumed.next_floor.max(checkpointer.last_seq + 1);
            counters
                .records_missing_at_open
                .store(missing, Ordering::Relaxed);
        }
        if let Some(metrics) = &options.metrics {
            metrics.audit_missing_at_open(missing);
        }

        let point = Point {
            seq: resumed.seq,
            hash: resumed.hash,
            segment: resumed.segment.as_ref().map(|s| s.name.clone()),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(SyncState {
                written: point.clone(),
                durable: point,
                files: Vec::new(),
                waiters: VecDeque::new(),
                in_flight: false,
                failed: None,
                checkpoint_due: false,
                stop: false,
            }),
            syncer_wakes: Condvar::new(),
            writer_wakes: Condvar::new(),
        });
        let spare = Arc::new(SpareSlot::default());
        let needed_soon = resumed
            .segment
            .as_ref()
            .is_none_or(|segment| segment.offset.saturating_mul(2) >= segment_bytes);
        spare.urgent.store(needed_soon, Ordering::Relaxed);
        let preparer = if options.preallocate {
            let (spare_dir, spare) = (dir.clone(), spare.clone());
            if spare_ok {
                spare.lock().ready = true;
            } else {
                spare.request();
            }
            Some(
                std::thread::Builder::new()
                    .name("audit-preparer".into())
                    .spawn(move || prepare_loop(&spare_dir, segment_bytes, &spare))
                    .map_err(|e| AuditError::io(&dir, "start the preparer thread", e))?,
            )
        } else {
            None
        };
        let syncer = {
            let (shared, counters, metrics) =
                (shared.clone(), counters.clone(), options.metrics.clone());
            let interval = options.checkpoint_interval.max(Duration::from_millis(10));
            std::thread::Builder::new()
                .name("audit-syncer".into())
                .spawn(move || sync_loop(&shared, &counters, metrics, checkpointer, interval))
                .map_err(|e| AuditError::io(&dir, "start the syncer thread", e))?
        };
        let writer = Writer {
            dir: dir.clone(),
            _lock: lock,
            seq: resumed.seq,
            hash: resumed.hash,
            next_floor: resumed.next_floor,
            current: resumed.segment,
            extents: Vec::new(),
            dirty: Vec::new(),
            shared,
            counters: counters.clone(),
            metrics: options.metrics.clone(),
            max_batch_records: options.max_batch_records.max(1),
            inline_sync_records: options.inline_sync_records,
            segment_bytes,
            spare,
            preallocate: options.preallocate,
            helpers: vec![syncer].into_iter().chain(preparer).collect(),
        };
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::io(&dir, "start the writer thread", e))?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx: Some(tx),
                counters,
                dir,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Appends `records` (in order, consecutively) and resolves once they are on disk (written
    /// and synced). `seq` and `prev` of the records are set by the log. An error means none of
    /// them is referenced by the chain: the answer must then be refused (30021).
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<AppendReceipt, AuditError> {
        let records = records
            .into_iter()
            .map(prepare)
            .collect::<Result<Vec<_>, _>>()?;
        self.send(records).await
    }

    /// Queues prepared records for the writer and waits until they are durable.
    async fn send(&self, records: Vec<Prepared>) -> Result<AppendReceipt, AuditError> {
        if records.is_empty() {
            return Ok(AppendReceipt {
                first_seq: 0,
                count: 0,
            });
        }
        let tx = self.inner.tx.as_ref().ok_or(AuditError::Stopped)?;
        let (done, wait) = oneshot::channel();
        tx.send(Job {
            records,
            done,
            queued: Instant::now(),
        })
        .await
        .map_err(|_| AuditError::Stopped)?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Appends the records of one request's `verdicts` (in order), as [`AuditLog::append`] of
    /// `AuditRecord::from_verdict(ctx, verdict)` each — the same lines — but serialising what
    /// the records share once per request (see `RequestLines`): the doors' way.
    pub async fn append_verdicts(
        &self,
        ctx: &RequestCtx<'_>,
        verdicts: &[Verdict],
    ) -> Result<AppendReceipt, AuditError> {
        let records = prepare_verdicts(ctx, verdicts)?;
        self.send(records).await
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> AuditStats {
        let c = &self.inner.counters;
        AuditStats {
            records: c.records.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            inline_batches: c.inline_batches.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            preallocated_segments: c.preallocated_segments.load(Ordering::Relaxed),
            records_missing_at_open: c.records_missing_at_open.load(Ordering::Relaxed),
        }
    }
}

/// Mode of every file the log creates: the records hold INSZs in clear.
pub(crate) const PRIVATE_FILE: u32 = 0o600;
/// Mode of the audit directory.
pub(crate) const PRIVATE_DIR: u32 = 0o700;

/// Sets `file`'s mode to [`PRIVATE_FILE`] (`fchmod`): the mode given at creation is narrowed by
/// the umask, and a file made by an earlier version may be wider; neither may decide.
pub(crate) fn private_file(file: File) -> std::io::Result<File> {
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode != PRIVATE_FILE {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(file)
}

/// Makes the audit directory [`PRIVATE_DIR`] when group or others may enter it, whatever the
/// umask made of it. A directory the service cannot change (not its owner) is left as it is,
/// with a warning: the segments in it are private anyway.
fn private_dir(dir: &Path) {
    let Ok(metadata) = std::fs::metadata(dir) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR)) {
        Ok(()) => tracing::info!(
            dir = %dir.display(),
            was = %format!("{mode:o}"),
            "audit directory made private (0700): the records hold INSZs in clear"
        ),
        Err(error) => tracing::warn!(
            dir = %dir.display(),
            mode = %format!("{mode:o}"),
            %error,
            "the audit directory is open to group or others and cannot be made 0700"
        ),
    }
}

/// Takes an exclusive `flock` on the directory's lock file, without waiting.
fn lock_dir(dir: &Path) -> Result<File, AuditError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(PRIVATE_FILE)
        .open(&path)
        .and_then(private_file)
        .map_err(|e| AuditError::io(&path, "open the lock file", e))?;
    // SAFETY: `flock` only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::WouldBlock {
            return Err(AuditError::Locked { path: dir.into() });
        }
        return Err(AuditError::io(&path, "lock", error));
    }
    Ok(file)
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The length of `,"seq":N,"prev":"<64 hex digits>"}` for a `seq` of `digits` digits.
fn chain_members_len(digits: usize) -> usize {
    br#","seq":"#.len() + digits + br#","prev":""#.len() + 64 + br#""}"#.len()
}

/// Day and part of a segment: orders segments in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SegmentId {
    date: NaiveDate,
    part: u32,
}

/// The audit segments of `dir`, newest first.
fn segments(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>, AuditError> {
    let entries = std::fs::read_dir(dir).map_err(|e| AuditError::io(dir, "list", e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, "list", e))?;
        let name = entry.file_name();
        if let Some((date, part)) = name.to_str().and_then(segment_of) {
            files.push((SegmentId { date, part }, entry.path()));
        }
    }
    files.sort_by_key(|file| std::cmp::Reverse(file.0));
    Ok(files)
}

/// The audit segments of `dir` with their day, in chain order (oldest first).
pub(crate) fn audit_files(dir: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, AuditError> {
    let mut files = segments(dir)?;
    files.reverse();
    Ok(files
        .into_iter()
        .map(|(id, path)| (id.date, path))
        .collect())
}

/// The open segment the writer appends to.
struct Segment {
    id: SegmentId,
    name: String,
    path: PathBuf,
    file: Arc<File>,
    /// Where the next record goes.
    offset: u64,
}

/// Where the chain stands on disk after [`resume`].
struct Resumed {
    seq: u64,
    hash: ChainHash,
    /// Smallest `seq` the next record may take (above any set aside with a torn tail).
    next_floor: u64,
    /// The newest segment, positioned after its last whole record.
    segment: Option<Segment>,
}

/// What a segment holds: where its whole lines end, where its non-zero bytes end.
struct Scan {
    len: u64,
    /// After the last `\n` before the first NUL byte (or the end): the whole records.
    valid_end: u64,
    /// After the last non-zero byte.
    nonzero_end: u64,
}

fn scan(file: &mut File, path: &Path) -> Result<Scan, AuditError> {
    let len = file
        .metadata()
        .map_err(|e| AuditError::io(path, "stat", e))?
        .len();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| AuditError::io(path, "read", e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut offset, mut valid_end, mut nonzero_end) = (0u64, 0u64, 0u64);
    let mut zeros_seen = false;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| AuditError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if !zeros_seen {
            let upto = chunk.iter().position(|&b| b == 0);
            let data = &chunk[..upto.unwrap_or(n)];
            if let Some(i) = data.iter().rposition(|&b| b == b'\n') {
                valid_end = offset + i as u64 + 1;
            }
            zeros_seen = upto.is_some();
        }
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            nonzero_end = offset + i as u64 + 1;
        }
        offset += n as u64;
    }
    Ok(Scan {
        len,
        valid_end,
        nonzero_end,
    })
}

fn resume(dir: &Path) -> Result<Resumed, AuditError> {
    let files = segments(dir)?;
    let mut segment = None;
    let mut next_floor = 0;
    for (index, (id, path)) in files.iter().enumerate() {
        // Segments written before modes were set explicitly may be 0644: made private here.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .and_then(private_file)
            .map_err(|e| AuditError::io(path, "open", e))?;
        let scan = scan(&mut file, path)?;
        let valid = scan.valid_end;
        if scan.nonzero_end > valid {
            let skipped = set_torn_tail_aside(&file, path, &scan)?;
            next_floor = next_floor.max(skipped);
        }
        if index == 0 {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let handle = file
                .try_clone()
                .map_err(|e| AuditError::io(path, "open", e))?;
            segment = Some(Segment {
                id: *id,
                name,
                path: path.clone(),
                file: Arc::new(handle),
                offset: valid,
            });
        }
        if valid == 0 {
            // No record in this segment (fresh, or its first round was undone): the chain is
            // further back.
            continue;
        }
        let line = last_line(&mut file, path, valid)?;
        let record: AuditRecord =
            serde_json::from_slice(&line).map_err(|e| AuditError::Corrupt {
                path: path.clone(),
                line: None,
                detail: format!(
                    "last line is not a valid audit record ({}); run `kbi-advice audit verify`",
                    super::mask_numbers(&e.to_string())
                ),
            })?;
        // The torn region held at most `skipped` records, numbered from `record.seq + 1` on.
        let next_floor = if next_floor > 0 {
            record.seq + next_floor + 1
        } else {
            0
        };
        return Ok(Resumed {
            seq: record.seq,
            hash: line_hash(&line),
            next_floor,
            segment,
        });
    }
    Ok(Resumed {
        seq: 0,
        hash: [0; 32],
        next_floor: if next_floor > 0 { next_floor + 1 } else { 0 },
        segment,
    })
}

/// Moves the bytes after the last whole line (up to the last non-zero byte) into a side file
/// and clears them from the segment; returns how many records they may have held.
fn set_torn_tail_aside(file: &File, path: &Path, scan: &Scan) -> Result<u64, AuditError> {
    let (keep, end) = (scan.valid_end, scan.nonzero_end);
    let mut torn = vec![0u8; (end - keep) as usize];
    file.read_exact_at(&mut torn, keep)
        .map_err(|e| AuditError::io(path, "read the torn tail of", e))?;
    let stamp = chrono::Utc::now().timestamp_millis();
    let side = PathBuf::from(format!("{}.torn-{stamp}", path.display()));
    let mut side_file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(&side)
        .and_then(private_file)
        .map_err(|e| AuditError::io(&side, "create", e))?;
    side_file
        .write_all(&torn)
        .and_then(|_| side_file.sync_all())
        .map_err(|e| AuditError::io(&side, "write", e))?;
    let cleared = if scan.len > end {
        // Preallocated space follows: zero the torn bytes in place, keep the reservation.
        file.write_all_at(&vec![0u8; torn.len()], keep)
            .and_then(|_| file.sync_data())
    } else {
        file.set_len(keep).and_then(|_| file.sync_all())
    };
    cleared.map_err(|e| AuditError::io(path, "clear the torn tail of", e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).map_err(|e| AuditError::io(parent, "sync", e))?;
    }
    let records = (end - keep).div_ceil(MIN_RECORD_BYTES) + 1;
    tracing::warn!(
        file = %path.display(),
        torn_bytes = torn.len(),
        kept_bytes = keep,
        moved_to = %side.display(),
        seq_set_aside = records,
        "audit log: torn tail (interrupted write, never acknowledged) cleared and kept aside; \
         its sequence numbers are not used again"
    );
    Ok(records)
}

const CHUNK: u64 = 64 * 1024;

/// Offset of the last `\n` in the first `len` bytes, scanning backwards in chunks.
fn last_newline(file: &mut File, path: &Path, len: u64) -> Result<Option<u64>, AuditError> {
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| AuditError::io(path, "read", e))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

/// The last line (without `\n`) of the first `len` bytes, which end with `\n`.
fn last_line(file: &mut File, path: &Path, len: u64) -> Result<Vec<u8>, AuditError> {
    let begin = match last_newline(file, path, len - 1)? {
        Some(at) => at + 1,
        None => 0,
    };
    let mut line = vec![0u8; (len - 1 - begin) as usize];
    file.seek(SeekFrom::Start(begin))
        .and_then(|_| file.read_exact(&mut line))
        .map_err(|e| AuditError::io(path, "read", e))?;
    Ok(line)
}

// ---- the spare segment, prepared ahead ---------------------------------------------------

#[derive(Default)]
struct SpareSlot {
    state: Mutex<SpareState>,
    changed: Condvar,
    /// The spare is needed soon: the current segment is half full, or there is none, or the
    /// writer is waiting for the spare. The preparer then stops resting between chunks.
    urgent: AtomicBool,
}

#[derive(Default)]
struct SpareState {
    /// A spare is on disk, zero-filled and synced.
    ready: bool,
    /// The preparer is at work.
    preparing: bool,
    /// The writer wants a (new) spare.
    wanted: bool,
    stop: bool,
}

impl SpareSlot {
    fn lock(&self) -> MutexGuard<'_, SpareState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request(&self) {
        self.lock().wanted = true;
        self.changed.notify_all();
    }

    /// Takes the spare if one is ready, waiting for a preparation in progress.
    fn take(&self) -> bool {
        self.urgent.store(true, Ordering::Relaxed);
        let mut state = self.lock();
        // A request not yet picked up, or a preparation running: its outcome decides.
        while state.preparing || (state.wanted && !state.ready && !state.stop) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        std::mem::take(&mut state.ready)
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

fn prepare_loop(dir: &Path, bytes: u64, slot: &SpareSlot) {
    loop {
        let mut state = slot.lock();
        while !(state.stop || state.wanted && !state.ready) {
            state = slot.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.stop {
            return;
        }
        state.wanted = false;
        state.preparing = true;
        drop(state);
        let result = prepare_spare(
            dir,
            bytes,
            || slot.lock().stop,
            || slot.urgent.load(Ordering::Relaxed),
        );
        let mut state = slot.lock();
        state.preparing = false;
        match result {
            Ok(()) => state.ready = true,
            Err(_) if state.stop => {}
            Err(error) => tracing::warn!(
                dir = %dir.display(),
                bytes,
                error = %error,
                "audit log: cannot prepare the next segment (preallocated, zero-filled); the \
                 next one will grow with each write instead (slower syncs)"
            ),
        }
        drop(state);
        slot.changed.notify_all();
    }
}

/// Whether `path` is a regular file of exactly `bytes` zeros (reading is cheaper than writing
/// them again).
fn is_clean_spare(path: &Path, bytes: u64) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() || meta.len() != bytes {
        return false;
    }
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
            _ => return false,
        }
    }
}

/// While there is time, zeros are written in chunks of this size, each on the device before
/// the next is issued: an audit sync never finds more than one chunk of ours queued ahead of it.
const SPARE_CHUNK: usize = 64 * 1024;
/// After each such chunk the preparer rests this long, leaving the disk to the audit syncs most
/// of the time (64 MiB then takes ≈ 1.5 s on this project's VM).
const SPARE_PAUSE: Duration = Duration::from_millis(1);
/// When the spare is needed soon, zeros go through the page cache this much at a time, and the
/// final sync writes them out at the disk's full speed.
const SPARE_URGENT_CHUNK: usize = 1024 * 1024;

/// Writes a zero-filled, synced spare segment of `bytes` and renames it into place.
///
/// How the zeros reach the disk is what the audit log's tail waited for: written all at once
/// into the page cache and then synced (as this did first), 64 MiB of zeros sat in the disk's
/// queue ahead of every audit `fdatasync` for ≈ 0.2 s at each rotation, and every answer of that
/// moment waited (`load-tests/spare_tail.py`; BENCHMARKS.md, "2026-12-03 (late)"). So while the
/// current segment is less than half full, the zeros go in small chunks, each pushed to the
/// device with `sync_file_range` and waited for before the next (at most one chunk of ours is
/// ever in the disk's queue), with a short rest after each. Through the page cache rather than
/// with `O_DIRECT`: the zero pages stay cached, so the writer's first record in a page does not
/// have to read it back from the disk. Once `urgent` says the spare is needed soon (the current
/// segment is half full, or the writer is waiting: heavy batch traffic fills a segment in a
/// fraction of a second), the rest goes through the page cache at full speed as before — a
/// stall at the rotation would cost more than a busy disk.
fn prepare_spare(
    dir: &Path,
    bytes: u64,
    stop: impl Fn() -> bool,
    urgent: impl Fn() -> bool,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let tmp = dir.join(SPARE_TMP);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)
            .and_then(private_file)?;
        // Reserve the blocks first: fails fast on a full disk, and keeps the file contiguous.
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
        if rc == libc::ENOSPC || rc == libc::EFBIG {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        // Then real zeros: the blocks are then initialised, so overwriting them later changes
        // no extent state and `fdatasync` flushes data only.
        let zeros = vec![0u8; SPARE_URGENT_CHUNK];
        let mut at = 0;
        while at < bytes {
            // Closing the log does not wait for a whole segment of zeros.
            if stop() {
                return Err(std::io::Error::other("the log is closing"));
            }
            let urgent = urgent();
            let chunk = if urgent {
                SPARE_URGENT_CHUNK
            } else {
                SPARE_CHUNK
            };
            let n = (bytes - at).min(chunk as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            if urgent {
                // Needed soon: left to the final sync.
                at += n as u64;
                continue;
            }
            // SAFETY: plain syscall on an open descriptor, on a range of it.
            let rc = unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    at as libc::off64_t,
                    n as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            at += n as u64;
            std::thread::sleep(SPARE_PAUSE);
        }
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(SPARE))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ---- writer and syncer -------------------------------------------------------------------

/// A place in the chain: the last record's `seq` and line hash, and the segment holding it.
#[derive(Debug, Clone)]
struct Point {
    seq: u64,
    hash: ChainHash,
    segment: Option<String>,
}

/// What the writer and the syncer share.
struct Shared {
    state: Mutex<SyncState>,
    syncer_wakes: Condvar,
    writer_wakes: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct SyncState {
    /// The last record written (in the page cache, maybe not yet on disk).
    written: Point,
    /// The last record on disk.
    durable: Point,
    /// Files written since the last sync began.
    files: Vec<WrittenFile>,
    /// Appends written, waiting for their sync, in `seq` order.
    waiters: VecDeque<Waiter>,
    /// A sync is running.
    in_flight: bool,
    /// A sync failed: the writer must undo everything after `durable` before going on.
    failed: Option<AuditError>,
    /// A segment was closed: checkpoint at the next sync.
    checkpoint_due: bool,
    /// The writer has stopped: sync what is left, checkpoint, end.
    stop: bool,
}

/// A file written since the last sync began, and the bytes written to it since then.
struct WrittenFile {
    path: PathBuf,
    file: Arc<File>,
    from: u64,
    to: u64,
}

/// Lets the kernel drop the cached pages of `file` that hold `[from, to)`, now on disk. A
/// record is written once and read again only by `audit verify` and `audit search`: kept in
/// the page cache it only takes memory, and pages that were freed are the cheapest to write
/// the next records and spare segments into (docs/performance.md: on this project's VM,
/// writing into page-cache pages never used before cost ten times the CPU of reusing freed
/// ones, and was half of the audit log's CPU in batches). The kernel drops only pages wholly
/// inside the range, so the page `to` falls in — where the next round continues — stays, as do
/// the zero-filled pages of a preallocated segment after it. Advice only: nothing depends on it.
fn forget_cached(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // From the start of the page `from` falls in: the previous round left it cached, partly
    // written.
    let start = from - from % 4096;
    let (Ok(offset), Ok(len)) = (
        libc::off_t::try_from(start),
        libc::off_t::try_from(to.saturating_sub(start)),
    ) else {
        return;
    };
    if len > 0 {
        // SAFETY: plain syscall on a descriptor `file` keeps open; advice cannot harm the data.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED) };
    }
}

struct Waiter {
    last_seq: u64,
    receipt: AppendReceipt,
    queued: Instant,
    done: Reply,
}

/// What one [`sync_written`] did.
enum Synced {
    /// Everything written up to this point is durable and its appends are answered.
    Durable(Point),
    /// The sync failed: its appends were refused and `failed` is set for the writer.
    Failed,
}

/// Syncs every file written since the last sync, then answers the appends it made durable (or
/// refuses them all if it failed). Run by the syncer thread, or by the writer for its own
/// small rounds (`AuditOptions::inline_sync_records`); `in_flight` keeps it to one at a time,
/// so the durable point only moves forward. The caller holds the lock, has checked that nothing
/// failed, that no sync is in flight and that something is written but not durable, and gets
/// the lock back.
fn sync_written<'a>(
    shared: &'a Shared,
    counters: &Counters,
    metrics: Option<&Arc<dyn AuditObserver>>,
    mut state: MutexGuard<'a, SyncState>,
) -> (MutexGuard<'a, SyncState>, Synced) {
    let target = state.written.clone();
    let files = std::mem::take(&mut state.files);
    state.in_flight = true;
    drop(state);
    let started = Instant::now();
    let mut result = Ok(());
    for written in &files {
        counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = written.file.sync_data() {
            result = Err(AuditError::io(&written.path, "sync", error));
            break;
        }
    }
    let took = started.elapsed();
    let mut state = shared.lock();
    state.in_flight = false;
    let synced = match result {
        Ok(()) => {
            state.durable = target.clone();
            let now = Instant::now();
            let mut answered = Vec::new();
            while state
                .waiters
                .front()
                .is_some_and(|w| w.last_seq <= target.seq)
            {
                let Some(waiter) = state.waiters.pop_front() else {
                    break;
                };
                answered.push(waiter);
            }
            let records: u64 = answered.iter().map(|w| w.receipt.count as u64).sum();
            // Counted before answering: whoever got an answer sees it in the stats. A sync
            // that only closed a segment (its waiters come with the next) is not a round of
            // records.
            if records > 0 {
                counters.records.fetch_add(records, Ordering::Relaxed);
                counters.batches.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = metrics {
                    metrics.audit_written(records, took);
                }
            }
            for waiter in answered {
                if let Some(metrics) = metrics {
                    metrics.audit_waited(now - waiter.queued);
                }
                let _ = waiter.done.send(Ok(waiter.receipt));
            }
            // After the answers, outside the lock: no append waits for the advice.
            drop(state);
            for written in &files {
                forget_cached(&written.file, written.from, written.to);
            }
            state = shared.lock();
            Synced::Durable(target)
        }
        Err(error) => {
            tracing::error!(
                error = %error,
                "audit log: sync failed; the answers waiting for it are refused"
            );
            counters.failures.fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = metrics {
                metrics.audit_failed();
            }
            for waiter in state.waiters.drain(..) {
                let _ = waiter.done.send(Err(error.clone()));
            }
            state.failed = Some(error);
            Synced::Failed
        }
    };
    // A writer may wait for this sync (to rotate, or to undo after a failure).
    shared.writer_wakes.notify_all();
    (state, synced)
}

/// The syncer thread: syncs what the writer handed over (large rounds, a closing segment, what
/// is left at stop) and writes the signed checkpoints — at the interval, after a rotation, and
/// at stop — whoever synced the records they vouch for.
fn sync_loop(
    shared: &Shared,
    counters: &Counters,
    metrics: Option<Arc<dyn AuditObserver>>,
    mut checkpointer: Checkpointer,
    interval: Duration,
) {
    let mut last_checkpoint = Instant::now();
    let mut state = shared.lock();
    loop {
        if state.failed.is_none() && !state.in_flight && state.written.seq != state.durable.seq {
            let synced;
            (state, synced) = sync_written(shared, counters, metrics.as_ref(), state);
            if let Synced::Durable(target) = synced {
                let due = std::mem::take(&mut state.checkpoint_due)
                    || last_checkpoint.elapsed() >= interval;
                if due {
                    drop(state);
                    checkpoint(&mut checkpointer, &target, counters);
                    last_checkpoint = Instant::now();
                    state = shared.lock();
                }
            }
            continue;
        }
        let unanchored = state.durable.seq > checkpointer.last_seq;
        // The writer has stopped, so no sync of its own is in flight.
        if state.stop {
            if unanchored && state.failed.is_none() {
                let target = state.durable.clone();
                drop(state);
                checkpoint(&mut checkpointer, &target, counters);
            }
            return;
        }
        // A rotation whose records the writer had already synced itself (the writer waits for
        // this checkpoint before it opens the next segment), or the interval.
        let rotated = state.checkpoint_due && !state.in_flight && state.failed.is_none();
        if rotated || (unanchored && last_checkpoint.elapsed() >= interval) {
            if unanchored {
                let target = state.durable.clone();
                drop(state);
                checkpoint(&mut checkpointer, &target, counters);
                last_checkpoint = Instant::now();
                state = shared.lock();
            }
            if rotated {
                // Only once the checkpoint is written does the waiting writer go on.
                state.checkpoint_due = false;
                shared.writer_wakes.notify_all();
            }
            continue;
        }
        let wait = if unanchored {
            interval.saturating_sub(last_checkpoint.elapsed())
        } else {
            interval
        };
        state = shared
            .syncer_wakes
            .wait_timeout(state, wait)
            .map(|(state, _)| state)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn checkpoint(checkpointer: &mut Checkpointer, at: &Point, counters: &Counters) {
    let Some(segment) = &at.segment else {
        return;
    };
    if at.seq == 0 || at.seq <= checkpointer.last_seq {
        return;
    }
    match checkpointer.write(at.seq, &at.hash, segment) {
        Ok(()) => {
            counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        // Answers do not wait for checkpoints: a missed one only leaves more records
        // unanchored until the next.
        Err(error) => tracing::error!(error = %error, "audit log: cannot write a checkpoint"),
    }
}

/// Bytes written since the last durable point, to undo if their sync (or write) fails.
struct Extent {
    path: PathBuf,
    file: Arc<File>,
    start: u64,
    end: u64,
    /// `seq` of the last record in the extent.
    last_seq: u64,
}

impl Extent {
    /// Zeros over preallocated space; a cut where the write grew the file.
    fn undo(&self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        if len <= self.end {
            self.file.set_len(self.start.min(len))?;
            self.file.sync_all()
        } else {
            let zeros = vec![0u8; (self.end - self.start) as usize];
            self.file.write_all_at(&zeros, self.start)?;
            self.file.sync_data()
        }
    }
}

/// State of the writer thread: the chain head as written (maybe not yet durable).
struct Writer {
    dir: PathBuf,
    _lock: File,
    seq: u64,
    hash: ChainHash,
    /// The next record's `seq` is at least this (numbers set aside with a torn tail or given to
    /// records that were undone).
    next_floor: u64,
    current: Option<Segment>,
    /// Written since the last durable point, oldest first.
    extents: Vec<Extent>,
    /// Extents whose undoing failed: cleared before anything else is written.
    dirty: Vec<Extent>,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    metrics: Option<Arc<dyn AuditObserver>>,
    max_batch_records: usize,
    inline_sync_records: usize,
    segment_bytes: u64,
    spare: Arc<SpareSlot>,
    preallocate: bool,
    helpers: Vec<JoinHandle<()>>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut records = first.records.len();
            let mut jobs = vec![first];
            while records < self.max_batch_records {
                match rx.try_recv() {
                    Ok(job) => {
                        records += job.records.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.round(jobs);
        }
        // Let the syncer finish what was written, checkpoint and stop.
        self.shared.lock().stop = true;
        self.shared.syncer_wakes.notify_all();
        self.spare.stop();
        for helper in self.helpers.drain(..) {
            let _ = helper.join();
        }
    }

    fn fail(&self, jobs: Vec<Job>, error: &AuditError) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.audit_failed();
        }
        tracing::error!(error = %error, "audit log: write failed; the answers are refused");
        for job in jobs {
            let _ = job.done.send(Err(error.clone()));
        }
    }

    fn round(&mut self, mut jobs: Vec<Job>) {
        if let Err(error) = self.recover() {
            self.fail(jobs, &error);
            return;
        }
        let before = self.point();
        let counts: Vec<usize> = jobs.iter().map(|job| job.records.len()).collect();
        let mut records = Vec::with_capacity(counts.iter().sum());
        for job in &mut jobs {
            records.append(&mut job.records);
        }
        let first_seq = (self.seq + 1).max(self.next_floor);
        match self.write_round(&records) {
            Ok(()) => {
                let shared = self.shared.clone();
                let mut state = shared.lock();
                self.publish(&mut state);
                let mut seq = first_seq;
                for (job, count) in jobs.into_iter().zip(counts) {
                    state.waiters.push_back(Waiter {
                        last_seq: seq + count as u64 - 1,
                        receipt: AppendReceipt {
                            first_seq: seq,
                            count,
                        },
                        queued: job.queued,
                        done: job.done,
                    });
                    seq += count as u64;
                }
                // A small round is synced here and answered at once; a large one, or one
                // while the syncer is still busy with the last, goes to the syncer.
                if records.len() <= self.inline_sync_records && !state.in_flight {
                    // Extents it makes durable are dropped at the next `publish`. The
                    // checkpoints stay with the syncer: it wakes at the interval and anchors
                    // whatever is durable by then.
                    let (state, synced) =
                        sync_written(&shared, &self.counters, self.metrics.as_ref(), state);
                    drop(state);
                    if matches!(synced, Synced::Durable(_)) {
                        self.counters.inline_batches.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    drop(state);
                    shared.syncer_wakes.notify_all();
                }
            }
            Err(error) => {
                // The round's numbers were given out (to records never acknowledged): never
                // again, whether or not their bytes got written.
                self.next_floor = self.next_floor.max(first_seq + records.len() as u64);
                // Back to before this round, or to the last durable record if a sync failed
                // meanwhile; never behind what is durable (a checkpoint may vouch for it).
                let failed = self.shared.lock().failed.is_some();
                let target = if failed {
                    self.shared.lock().durable.clone()
                } else {
                    let durable = self.shared.lock().durable.clone();
                    if durable.seq > before.seq {
                        durable
                    } else {
                        before
                    }
                };
                if failed {
                    // The syncer already refused the waiters it held; this round's are ours.
                    let _ = self.recover();
                } else {
                    self.rollback_to(&target);
                    let mut state = self.shared.lock();
                    state.written = target;
                }
                self.fail(jobs, &error);
            }
        }
    }

    fn point(&self) -> Point {
        Point {
            seq: self.seq,
            hash: self.hash,
            segment: self.current.as_ref().map(|s| s.name.clone()),
        }
    }

    /// Hands what was written to the syncer (the caller notifies it).
    fn publish(&mut self, state: &mut SyncState) {
        state.written = Point {
            seq: self.seq,
            hash: self.hash,
            segment: self.current.as_ref().map(|s| s.name.clone()),
        };
        for extent in self.extents.iter().rev() {
            match state.files.iter_mut().find(|w| w.path == extent.path) {
                Some(written) => {
                    written.from = written.from.min(extent.start);
                    written.to = written.to.max(extent.end);
                }
                None => state.files.push(WrittenFile {
                    path: extent.path.clone(),
                    file: extent.file.clone(),
                    from: extent.start,
                    to: extent.end,
                }),
            }
        }
        // Extents already durable need no undo any more.
        let durable = state.durable.seq;
        self.extents.retain(|extent| extent.last_seq > durable);
    }

    /// After a failed sync: waits for the syncer, undoes everything after the last durable
    /// record and resumes from there. Then clears bytes a failed undo left behind.
    fn recover(&mut self) -> Result<(), AuditError> {
        let mut state = self.shared.lock();
        if state.failed.is_some() {
            while state.in_flight {
                state = self
                    .shared
                    .writer_wakes
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            let durable = state.durable.clone();
            state.failed = None;
            state.files.clear();
            state.written = durable.clone();
            drop(state);
            self.rollback_to(&durable);
        } else {
            drop(state);
        }
        let mut still = Vec::new();
        for extent in std::mem::take(&mut self.dirty) {
            if let Err(error) = extent.undo() {
                let error = AuditError::io(&extent.path, "undo a failed write in", error);
                still.push(extent);
                self.dirty = still;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Undoes every extent after `point` (newest first) and makes `point` the chain head.
    fn rollback_to(&mut self, point: &Point) {
        let mut undone = Vec::new();
        while self.extents.last().is_some_and(|e| e.last_seq > point.seq) {
            let Some(extent) = self.extents.pop() else {
                break;
            };
            undone.push(extent);
        }
        for extent in undone {
            if let Some(current) = self.current.as_mut() {
                if current.path == extent.path {
                    current.offset = current.offset.min(extent.start);
                }
            }
            if let Err(error) = extent.undo() {
                tracing::warn!(
                    file = %extent.path.display(),
                    error = %error,
                    "audit log: cannot undo a failed write yet; will retry before the next write"
                );
                self.dirty.push(extent);
            }
        }
        // A number once given out is never given again, even to replace a record that was
        // undone: `verify` shows the gap (the chain itself runs on unbroken).
        self.next_floor = self.next_floor.max(self.seq + 1);
        self.seq = point.seq;
        self.hash = point.hash;
    }

    /// Chains and writes `records` after the chain head; on error, what it wrote is left in
    /// `self.extents` for the caller to undo.
    fn write_round(&mut self, records: &[Prepared]) -> Result<(), AuditError> {
        let mut buf: Vec<u8> = Vec::with_capacity(records.len() * 512);
        let mut buf_last_seq = 0;
        let mut seq_text = itoa::Buffer::new();
        for record in records {
            let seq = (self.seq + 1).max(self.next_floor);
            let seq_digits = seq_text.format(seq).as_bytes();
            let line_len = record.head.len() + chain_members_len(seq_digits.len()) + 1;
            let date = match &self.current {
                Some(current) => current.id.date.max(record.date),
                None => record.date,
            };
            let fits = self.current.as_ref().is_some_and(|current| {
                let used = current.offset + buf.len() as u64;
                current.id.date == date
                    && (used + line_len as u64 <= self.segment_bytes || used == 0)
            });
            if !fits {
                self.flush(&mut buf, buf_last_seq)?;
                self.rotate(date)?;
            }
            // The line is built once, where it is written from: the prepared head, then the
            // chain members; its hash covers it without the `\n`.
            let start = buf.len();
            buf.extend_from_slice(&record.head);
            buf.extend_from_slice(br#","seq":"#);
            buf.extend_from_slice(seq_digits);
            buf.extend_from_slice(br#","prev":""#);
            let mut prev = [0_u8; 64];
            // A 32-byte hash always fits 64 hex digits.
            let _ = hex::encode_to_slice(self.hash, &mut prev);
            buf.extend_from_slice(&prev);
            buf.extend_from_slice(b"\"}");
            let hash = line_hash(&buf[start..]);
            buf.push(b'\n');
            buf_last_seq = seq;
            self.seq = seq;
            self.hash = hash;
        }
        self.flush(&mut buf, buf_last_seq)
    }

    /// Writes `buf` at the current segment's offset.
    fn flush(&mut self, buf: &mut Vec<u8>, last_seq: u64) -> Result<(), AuditError> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(current) = self.current.as_mut() else {
            return Err(AuditError::Stopped);
        };
        let start = current.offset;
        let end = start + buf.len() as u64;
        self.extents.push(Extent {
            path: current.path.clone(),
            file: current.file.clone(),
            start,
            end,
            last_seq,
        });
        current
            .file
            .write_all_at(buf, start)
            .map_err(|e| AuditError::io(&current.path, "write", e))?;
        current.offset = end;
        if end.saturating_mul(2) >= self.segment_bytes && !self.spare.urgent.load(Ordering::Relaxed)
        {
            self.spare.urgent.store(true, Ordering::Relaxed);
        }
        buf.clear();
        Ok(())
    }

    /// Closes the current segment (once everything in it is durable, so that a torn tail can
    /// only ever be in the newest segment) and opens the next one, for `date`.
    fn rotate(&mut self, date: NaiveDate) -> Result<(), AuditError> {
        let id = match &self.current {
            Some(current) if current.id.date == date => SegmentId {
                date,
                part: current.id.part + 1,
            },
            _ => SegmentId { date, part: 0 },
        };
        if self.current.is_some() {
            let shared = self.shared.clone();
            let mut state = shared.lock();
            self.publish(&mut state);
            state.checkpoint_due = true;
            shared.syncer_wakes.notify_all();
            // Until the closing segment is durable and its checkpoint is taken (the syncer
            // clears `checkpoint_due` when it syncs, or after the checkpoint if the writer had
            // synced the segment's last round itself).
            while state.failed.is_none()
                && (state.in_flight || state.durable.seq != self.seq || state.checkpoint_due)
            {
                state = shared
                    .writer_wakes
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if let Some(error) = &state.failed {
                return Err(error.clone());
            }
        }
        let name = segment_name(id.date, id.part);
        let path = self.dir.join(&name);
        let from_spare = self.preallocate && self.spare.take();
        if from_spare {
            // A link, not a rename: never replaces a segment of that name.
            let taken = std::fs::hard_link(self.dir.join(SPARE), &path)
                .and_then(|_| std::fs::remove_file(self.dir.join(SPARE)));
            // Only now may the preparer put the next spare under that name.
            self.spare.request();
            taken.map_err(|e| AuditError::io(&path, "create (from the prepared spare)", e))?;
            self.counters
                .preallocated_segments
                .fetch_add(1, Ordering::Relaxed);
        } else if self.preallocate {
            self.spare.request();
        }
        // The new segment is empty: the next spare may take its time.
        self.spare.urgent.store(false, Ordering::Relaxed);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(!from_spare)
            .truncate(false)
            .mode(PRIVATE_FILE)
            .open(&path)
            .and_then(private_file)
            .map_err(|e| AuditError::io(&path, "open", e))?;
        if !from_spare {
            let len = file
                .metadata()
                .map_err(|e| AuditError::io(&path, "stat", e))?
                .len();
            if len != 0 {
                return Err(AuditError::Corrupt {
                    path,
                    line: None,
                    detail: format!(
                        "a new segment already exists ({len} bytes): changed outside the \
                         service; run `kbi-advice audit verify`"
                    ),
                });
            }
        }
        // The segment's name must survive a crash as well as the data behind it.
        let synced = sync_dir(&self.dir);
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        synced.map_err(|e| AuditError::io(&self.dir, "sync", e))?;
        self.current = Some(Segment {
            id,
            name,
            path,
            file: Arc::new(file),
            offset: 0,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditOutcome, AuditRecord};
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_paced_spare_is_exactly_the_segment_size_in_zeros() {
        let dir = tempfile::tempdir().unwrap();
        // One chunk, whole chunks, and a short last one that is no multiple of 4 KiB.
        for bytes in [
            4096,
            3 * SPARE_CHUNK as u64,
            3 * SPARE_CHUNK as u64 + 4096 + 100,
        ] {
            let polled = std::cell::Cell::new(0);
            let urgent = || {
                polled.set(polled.get() + 1);
                false
            };
            prepare_spare(dir.path(), bytes, || false, urgent).unwrap();
            assert_eq!(
                polled.get(),
                bytes.div_ceil(SPARE_CHUNK as u64),
                "asked once per chunk"
            );
            assert!(is_clean_spare(&dir.path().join(SPARE), bytes), "{bytes}");
            assert!(!dir.path().join(SPARE_TMP).exists());
            std::fs::remove_file(dir.path().join(SPARE)).unwrap();
        }
    }

    #[test]
    fn a_spare_needed_soon_is_finished_in_large_chunks() {
        let dir = tempfile::tempdir().unwrap();
        // Paced for the first two chunks, then urgent: the rest in 1 MiB pieces.
        let bytes = 2 * SPARE_CHUNK as u64 + 2 * SPARE_URGENT_CHUNK as u64 + 100;
        let polled = std::cell::Cell::new(0);
        let urgent = || {
            polled.set(polled.get() + 1);
            polled.get() > 2
        };
        prepare_spare(dir.path(), bytes, || false, urgent).unwrap();
        assert_eq!(
            polled.get(),
            2 + 3,
            "two small chunks, then three large ones"
        );
        assert!(is_clean_spare(&dir.path().join(SPARE), bytes));
    }

    #[test]
    fn a_spare_interrupted_by_closing_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = std::cell::Cell::new(0);
        let stop = || {
            chunks.set(chunks.get() + 1);
            chunks.get() > 2
        };
        assert!(prepare_spare(dir.path(), 8 * SPARE_CHUNK as u64, stop, || false).is_err());
        assert!(!dir.path().join(SPARE).exists());
        assert!(!dir.path().join(SPARE_TMP).exists());
    }

    /// The rotation bound counts a line's chain members with this length.
    #[test]
    fn chain_members_len_is_the_length_of_the_chain_members() {
        for seq in [1_u64, 9, 10, 123_456_789, u64::MAX] {
            let members = format!(r#","seq":{seq},"prev":"{}"}}"#, "0".repeat(64));
            assert_eq!(chain_members_len(seq.to_string().len()), members.len());
        }
    }

    /// The doors' way of preparing a request's records writes the same bytes as preparing each
    /// `AuditRecord::from_verdict`: with and without a sender (escaping needed), snapshot or
    /// rule set, for answered, NOK and refused questions, with and without a Referte, and for a
    /// reference date outside the years 0–9999.
    #[test]
    fn a_request_prepared_at_once_is_each_record_prepared() {
        use crate::RequestCtx;
        use kbi_core::domain::magda::Sender;
        use kbi_core::domain::{Advice, ErrorCode, Insz, ReasonCode};
        let insz = Insz::parse("85073003328").unwrap();
        let advice = |subject, compliant, reason, date| Advice {
            insz,
            reference_date: date,
            subject,
            compliant,
            reason,
            found: true,
        };
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        let verdicts = vec![
            Verdict::advised(Some("q-\"1\"".into()), advice(true, true, None, day))
                .under(Some("care-budget".into())),
            Verdict::advised(
                None,
                advice(true, false, Some(ReasonCode::GeenContract), far),
            ),
            Verdict::refused(None, None, ErrorCode::InvalidInsz),
            Verdict {
                reference_date: Some(day),
                found: Some(false),
                ..Verdict::refused(Some("q-2".into()), Some(insz), ErrorCode::SnapshotTooOld)
            },
        ];
        let sender = Sender {
            identificatie: "demo.<kbi>".into(),
            referte: "r\u{1}".into(),
            hoedanigheid: "9999".into(),
            gebruiker: Some("é".into()),
        };
        let time = Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 59).unwrap()
            + chrono::Duration::milliseconds(999);
        let contexts = [
            RequestCtx {
                time,
                server_reference: "srv-1",
                client_id: "demo",
                protocol: Some("demo"),
                sender: Some(&sender),
                snapshot_id: Some("snap-\"1\""),
                rule_set: Some("2026.1"),
            },
            RequestCtx {
                time,
                server_reference: "srv-2",
                client_id: "c\\d",
                protocol: Some("demo"),
                sender: None,
                snapshot_id: None,
                rule_set: None,
            },
        ];
        for ctx in &contexts {
            let at_once = prepare_verdicts(ctx, &verdicts).unwrap();
            assert_eq!(at_once.len(), verdicts.len());
            for (prepared, verdict) in at_once.iter().zip(&verdicts) {
                let each = prepare(AuditRecord::from_verdict(ctx, verdict)).unwrap();
                assert_eq!(
                    String::from_utf8(prepared.head.clone()).unwrap(),
                    String::from_utf8(each.head).unwrap()
                );
                assert_eq!(prepared.date, each.date);
            }
        }
    }

    /// The writer's line (prepared head + chain fields) is exactly `serde_json` of the record
    /// with its `seq` and `prev`: readers and `verify` parse it as a record.
    #[test]
    fn a_prepared_and_chained_line_is_the_serialised_record() {
        let mut record = AuditRecord {
            time: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            server_reference: "srv-1".into(),
            client_id: "demo".into(),
            protocol: Some("demo".into()),
            sender: None,
            question_referte: None,
            insz: Some(kbi_core::domain::Insz::parse("85073003328").unwrap()),
            reference_date: NaiveDate::from_ymd_opt(2026, 1, 1),
            outcome: AuditOutcome::Ok,
            found: Some(false),
            purpose: Some("care-budget".into()),
            snapshot_id: Some("snap-\"1\"".into()),
            rule_set: Some("2026.1".into()),
            seq: 0,
            prev: String::new(),
        };
        let prepared = prepare(record.clone()).unwrap();
        let hash = [0xab_u8; 32];
        let mut line = prepared.head.clone();
        let mut prev = [0_u8; 64];
        hex::encode_to_slice(hash, &mut prev).unwrap();
        write!(line, r#","seq":42,"prev":""#).unwrap();
        line.extend_from_slice(&prev);
        line.extend_from_slice(b"\"}");
        record.seq = 42;
        record.prev = hex::encode(hash);
        assert_eq!(line, serde_json::to_vec(&record).unwrap());
    }
}
