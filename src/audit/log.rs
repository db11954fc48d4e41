//! The durable writer: group commit on one thread, daily files, chain resumed on open.
//!
//! Why a dedicated thread: `write` and `fdatasync` block, and the whole point is that many
//! requests share one `fdatasync`. Requests hand their records to the thread through a bounded
//! queue (backpressure when the disk is slower than the traffic) and wait on a one-shot reply.
//! The thread takes one batch, then everything else already queued, writes it all, syncs once,
//! and only then answers every waiter of that round. While it syncs, the next round queues up,
//! so the number of syncs per second stays bounded by the disk, not by the request rate.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::NaiveDate;
use tokio::sync::{mpsc, oneshot};

use super::record::{file_date, file_name, line_hash, AuditRecord, ChainHash};
use super::AuditError;
use crate::telemetry::metrics::Metrics;

/// Name of the lock file that keeps a second process from writing the same directory (two
/// writers would fork the chain).
pub const LOCK_FILE: &str = ".audit.lock";

/// How [`AuditLog::open`] sets the log up.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Where `audit_written` / `audit_failed` are recorded.
    pub metrics: Option<Arc<Metrics>>,
    /// Most appends waiting for the writer; further appends wait for room (backpressure).
    pub queue: usize,
    /// Most records written in one round (one sync), so one round stays short.
    pub max_batch_records: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            metrics: None,
            queue: 4096,
            max_batch_records: 50_000,
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
/// `audit_*` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records made durable.
    pub records: u64,
    /// Rounds committed (one write sequence and one data sync per day file touched).
    pub batches: u64,
    /// `fdatasync`/`fsync` calls (data files and, on file creation, the directory).
    pub fsyncs: u64,
    /// Rounds that failed (every append in them got an error).
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    failures: AtomicU64,
}

struct Job {
    records: Vec<Prepared>,
    done: oneshot::Sender<Result<AppendReceipt, AuditError>>,
}

/// A record serialised by the caller, up to where the log adds its place in the chain: the
/// JSON of the record without its final `,"seq":…,"prev":"…"}`. Serialising on the requests'
/// threads keeps the single writer thread to chaining, hashing and writing, so it is not the
/// bottleneck of large batches. The line written is byte for byte `serde_json` of the record.
struct Prepared {
    date: NaiveDate,
    head: Vec<u8>,
}

/// How a record with `seq` 0 and an empty `prev` ends in JSON (the struct's last two fields).
const UNCHAINED_TAIL: &[u8] = br#","seq":0,"prev":""}"#;

fn prepare(mut record: AuditRecord) -> Result<Prepared, AuditError> {
    record.seq = 0;
    record.prev = String::new();
    let mut head = serde_json::to_vec(&record).map_err(|e| AuditError::Corrupt {
        path: PathBuf::new(),
        line: None,
        detail: format!("cannot serialise a record: {e}"),
    })?;
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

/// A handle on the audit log; clone it freely. The writer thread stops when the last handle is
/// dropped, after finishing what was queued (dropping the last handle waits for that).
///
/// **Files.** Records go to `audit-YYYY-MM-DD.jsonl` by the UTC date of their `time`. The log
/// never writes to an older file than the one it last wrote: a record stamped just before
/// midnight that reaches the writer after a record of the new day goes into the new day's file.
/// The chain (`seq`, `prev`) runs on across files.
///
/// **Failures.** If a write or a sync fails, every append of that round gets an error, the
/// bytes of the round are truncated away again, and the chain state goes back to the last
/// durable record, so no record that was not written is ever referenced. The next round
/// reopens the file and tries again.
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
    /// chain from the newest file and starts the writer thread.
    ///
    /// A torn last line (a write cut short by a crash: bytes after the last `\n`) is moved to
    /// `<file>.torn-<unix-ms>` beside the file and cut from the log, with a warning. Those bytes
    /// were never acknowledged (appends complete only after the sync of complete lines), so no
    /// answer rests on them; the side file keeps the trace. A last *complete* line that is not a
    /// valid record stops the open ([`AuditError::Corrupt`]): that is not a crash artefact, and
    /// the operator must look (`kbi-advice audit verify`).
    pub fn open(dir: impl AsRef<Path>, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, "create directory", e))?;
        let lock = lock_dir(&dir)?;
        let counters = Arc::new(Counters::default());
        let resumed = resume(&dir)?;
        let writer = Writer {
            dir: dir.clone(),
            _lock: lock,
            seq: resumed.seq,
            hash: resumed.hash,
            durable: resumed.durable,
            file: None,
            dirty: Vec::new(),
            counters: counters.clone(),
            metrics: options.metrics.clone(),
            max_batch_records: options.max_batch_records.max(1),
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
    /// them was written: the answer must then be refused (30021).
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<AppendReceipt, AuditError> {
        if records.is_empty() {
            return Ok(AppendReceipt {
                first_seq: 0,
                count: 0,
            });
        }
        let tx = self.inner.tx.as_ref().ok_or(AuditError::Stopped)?;
        let records = records
            .into_iter()
            .map(prepare)
            .collect::<Result<Vec<_>, _>>()?;
        let (done, wait) = oneshot::channel();
        tx.send(Job { records, done })
            .await
            .map_err(|_| AuditError::Stopped)?;
        wait.await.map_err(|_| AuditError::Stopped)?
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
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
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
        .open(&path)
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

/// Where the chain stands on disk.
struct Resumed {
    seq: u64,
    hash: ChainHash,
    /// The newest file and its (valid) length.
    durable: Option<(NaiveDate, u64)>,
}

/// The audit files of `dir`, newest first.
pub(crate) fn audit_files(dir: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, AuditError> {
    let entries = std::fs::read_dir(dir).map_err(|e| AuditError::io(dir, "list", e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, "list", e))?;
        let name = entry.file_name();
        if let Some(date) = name.to_str().and_then(file_date) {
            files.push((date, entry.path()));
        }
    }
    files.sort_by_key(|file| std::cmp::Reverse(file.0));
    Ok(files)
}

fn resume(dir: &Path) -> Result<Resumed, AuditError> {
    let files = audit_files(dir)?;
    let mut durable = None;
    for (index, (date, path)) in files.iter().enumerate() {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| AuditError::io(path, "open", e))?;
        let len = cut_torn_tail(&mut file, path)?;
        if index == 0 {
            durable = Some((*date, len));
        }
        if len == 0 {
            // An empty file (its first write failed and was undone): the chain is further back.
            continue;
        }
        let line = last_line(&mut file, path, len)?;
        let record: AuditRecord =
            serde_json::from_slice(&line).map_err(|e| AuditError::Corrupt {
                path: path.clone(),
                line: None,
                detail: format!(
                    "last line is not a valid audit record ({}); run `kbi-advice audit verify`",
                    super::mask_numbers(&e.to_string())
                ),
            })?;
        return Ok(Resumed {
            seq: record.seq,
            hash: line_hash(&line),
            durable,
        });
    }
    Ok(Resumed {
        seq: 0,
        hash: [0; 32],
        durable,
    })
}

/// Removes a torn tail (bytes after the last `\n`) into a side file; returns the valid length.
fn cut_torn_tail(file: &mut File, path: &Path) -> Result<u64, AuditError> {
    let len = file
        .metadata()
        .map_err(|e| AuditError::io(path, "stat", e))?
        .len();
    if len == 0 {
        return Ok(0);
    }
    let keep = match last_newline(file, path, len)? {
        Some(at) => at + 1,
        None => 0,
    };
    if keep == len {
        return Ok(len);
    }
    let mut torn = Vec::new();
    file.seek(SeekFrom::Start(keep))
        .and_then(|_| file.read_to_end(&mut torn))
        .map_err(|e| AuditError::io(path, "read the torn tail of", e))?;
    let stamp = chrono::Utc::now().timestamp_millis();
    let side = PathBuf::from(format!("{}.torn-{stamp}", path.display()));
    let mut side_file = File::create(&side).map_err(|e| AuditError::io(&side, "create", e))?;
    side_file
        .write_all(&torn)
        .and_then(|_| side_file.sync_all())
        .map_err(|e| AuditError::io(&side, "write", e))?;
    file.set_len(keep)
        .and_then(|_| file.sync_all())
        .map_err(|e| AuditError::io(path, "truncate the torn tail of", e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).map_err(|e| AuditError::io(parent, "sync", e))?;
    }
    tracing::warn!(
        file = %path.display(),
        torn_bytes = torn.len(),
        kept_bytes = keep,
        moved_to = %side.display(),
        "audit log: torn last line (interrupted write, never acknowledged) cut and kept aside"
    );
    Ok(keep)
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

/// The last line (without `\n`) of a file of `len` bytes that ends with `\n`.
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

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The open day file.
struct OpenFile {
    date: NaiveDate,
    path: PathBuf,
    file: File,
}

/// State of the writer thread. `seq`, `hash` and `durable` only ever describe synced data.
struct Writer {
    dir: PathBuf,
    _lock: File,
    seq: u64,
    hash: ChainHash,
    /// The file last written (or found on open) and its durable length.
    durable: Option<(NaiveDate, u64)>,
    file: Option<OpenFile>,
    /// Files whose undoing failed: path and the length they must be cut back to before use.
    dirty: Vec<(PathBuf, u64)>,
    counters: Arc<Counters>,
    metrics: Option<Arc<Metrics>>,
    max_batch_records: usize,
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
    }

    fn round(&mut self, mut jobs: Vec<Job>) {
        let started = Instant::now();
        let counts: Vec<usize> = jobs.iter().map(|job| job.records.len()).collect();
        let mut all = Vec::with_capacity(counts.iter().sum());
        for job in &mut jobs {
            all.append(&mut job.records);
        }
        let first_seq = self.seq + 1;
        match self.commit(all) {
            Ok(written) => {
                self.counters.records.fetch_add(written, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.audit_written(written, started.elapsed());
                }
                let mut seq = first_seq;
                for (job, count) in jobs.into_iter().zip(counts) {
                    let _ = job.done.send(Ok(AppendReceipt {
                        first_seq: seq,
                        count,
                    }));
                    seq += count as u64;
                }
            }
            Err(error) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.audit_failed();
                }
                tracing::error!(error = %error, "audit log: write failed; the answers are refused");
                for job in jobs {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
        }
    }

    /// Writes and syncs `records` after the last durable one; all or nothing.
    fn commit(&mut self, records: Vec<Prepared>) -> Result<u64, AuditError> {
        // Lay the lines out per day file, chaining as we go (on a copy of the chain state).
        let mut seq = self.seq;
        let mut hash = self.hash;
        let mut floor = self.durable.map(|(date, _)| date);
        let mut segments: Vec<(NaiveDate, Vec<u8>)> = Vec::new();
        for record in &records {
            let date = floor.map_or(record.date, |floor| floor.max(record.date));
            floor = Some(date);
            seq += 1;
            if segments.last().is_none_or(|(last, _)| *last != date) {
                segments.push((
                    date,
                    Vec::with_capacity(records.len() * (record.head.len() + 110)),
                ));
            }
            let Some((_, bytes)) = segments.last_mut() else {
                return Err(AuditError::Stopped);
            };
            let start = bytes.len();
            bytes.extend_from_slice(&record.head);
            let mut prev = [0_u8; 64];
            // A 32-byte hash always fits 64 hex digits.
            let _ = hex::encode_to_slice(hash, &mut prev);
            let _ = write!(bytes, r#","seq":{seq},"prev":""#);
            bytes.extend_from_slice(&prev);
            bytes.extend_from_slice(b"\"}");
            hash = line_hash(&bytes[start..]);
            bytes.push(b'\n');
        }
        let mut touched: Vec<(PathBuf, u64)> = Vec::new();
        let mut durable = self.durable;
        for (date, bytes) in &segments {
            let result = self.write_segment(*date, bytes, &mut durable, &mut touched);
            if let Err(error) = result {
                self.undo(&touched);
                return Err(error);
            }
        }
        self.seq = seq;
        self.hash = hash;
        self.durable = durable;
        Ok(records.len() as u64)
    }

    fn write_segment(
        &mut self,
        date: NaiveDate,
        bytes: &[u8],
        durable: &mut Option<(NaiveDate, u64)>,
        touched: &mut Vec<(PathBuf, u64)>,
    ) -> Result<(), AuditError> {
        let expected = match *durable {
            Some((d, len)) if d == date => len,
            _ => 0,
        };
        self.ensure_file(date, expected)?;
        let Some(open) = self.file.as_mut() else {
            return Err(AuditError::Stopped);
        };
        touched.push((open.path.clone(), expected));
        open.file
            .write_all(bytes)
            .map_err(|e| AuditError::io(&open.path, "write", e))?;
        let synced = open.file.sync_data();
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        synced.map_err(|e| AuditError::io(&open.path, "sync", e))?;
        *durable = Some((date, expected + bytes.len() as u64));
        Ok(())
    }

    /// Makes `self.file` the file of `date`, whose valid length must be `expected`.
    fn ensure_file(&mut self, date: NaiveDate, expected: u64) -> Result<(), AuditError> {
        if self.file.as_ref().is_some_and(|f| f.date == date) {
            return Ok(());
        }
        self.file = None;
        let path = self.dir.join(file_name(date));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| AuditError::io(&path, "stat", e))?
            .len();
        if expected == 0 {
            // A new day file: its name must survive a crash as well as the data behind it.
            // (Also when an empty file was left by a failed round: its entry may not be synced.)
            let synced = sync_dir(&self.dir);
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            synced.map_err(|e| AuditError::io(&self.dir, "sync", e))?;
        }
        if len != expected {
            let ours = self.dirty.iter().any(|(p, l)| *p == path && *l == expected);
            if len < expected || !ours {
                return Err(AuditError::Corrupt {
                    path,
                    line: None,
                    detail: format!(
                        "file is {len} bytes, the log wrote {expected}: changed outside the \
                         service; run `kbi-advice audit verify`"
                    ),
                });
            }
            // Bytes of an earlier failed round that could not be cut at the time.
            file.set_len(expected)
                .and_then(|_| file.sync_all())
                .map_err(|e| AuditError::io(&path, "truncate", e))?;
            self.dirty.retain(|(p, _)| *p != path);
        }
        self.file = Some(OpenFile { date, path, file });
        Ok(())
    }

    /// Cuts the files of a failed round back to their lengths before it, newest first, and
    /// drops the open handle so that the next round reopens.
    fn undo(&mut self, touched: &[(PathBuf, u64)]) {
        self.file = None;
        for (path, len) in touched.iter().rev() {
            let cut = OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|file| file.set_len(*len).and_then(|_| file.sync_all()));
            if let Err(error) = cut {
                tracing::warn!(
                    file = %path.display(),
                    error = %error,
                    "audit log: cannot undo a failed write yet; will retry before the next write"
                );
                self.dirty.retain(|(p, _)| p != path);
                self.dirty.push((path.clone(), *len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditOutcome, AuditRecord};
    use chrono::{TimeZone, Utc};

    /// The writer's line (prepared head + chain fields) is exactly `serde_json` of the record
    /// with its `seq` and `prev`: readers and `verify` parse it as a record.
    #[test]
    fn a_prepared_and_chained_line_is_the_serialised_record() {
        let mut record = AuditRecord::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            "srv-1",
            "demo",
            None,
            None,
            Some(crate::domain::Insz::parse("85073003328").unwrap()),
            NaiveDate::from_ymd_opt(2026, 1, 1),
            AuditOutcome::Ok,
            Some(false),
            Some("snap-\"1\"".into()),
            Some("2026.1".into()),
        );
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
