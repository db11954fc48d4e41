//! Loading a published version: fetch the meta, stream the chunks (each checked against its
//! SHA-256 before a byte of it is used) through the decompressor into the same loader as a file.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{check_version, ChunkProblem, RedisSnapshotError, RedisTarget, VersionMeta};
use kbi_core::domain::{CompiledSnapshot, Insz, RuleSet};
use kbi_core::io::Progress;
use kbi_core::snapshot::person::Person;
use kbi_core::snapshot::reader::ReadLimits;
use kbi_core::snapshot::reader::{self, Compression};

/// A version loaded from Redis.
pub struct LoadedVersion {
    /// The version number.
    pub version: String,
    /// What the publisher stored about it.
    pub meta: VersionMeta,
    /// The compiled snapshot.
    pub snapshot: CompiledSnapshot,
}

/// The version `current` points at, `None` when nothing was published.
pub fn current_version(target: &RedisTarget) -> Result<Option<String>, RedisSnapshotError> {
    let mut con = target.connect()?;
    read_current(target, &mut con)
}

pub(super) fn read_current(
    target: &RedisTarget,
    con: &mut redis::Connection,
) -> Result<Option<String>, RedisSnapshotError> {
    let key = target.keys().current();
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query(con)
        .map_err(|e| target.unavailable(e))?;
    match value {
        None => Ok(None),
        Some(v) if check_version(&v) => Ok(Some(v)),
        Some(_) => Err(RedisSnapshotError::BadPointer {
            address: target.shown().to_string(),
            key,
        }),
    }
}

/// Loads the version `current` points at, compiled with `rules`.
///
/// If the version disappears while it is read (a newer publish removed it), the new `current` is
/// loaded instead; a corrupt version is refused with an error naming the version and chunk.
pub fn load_current(
    target: &RedisTarget,
    rules: Arc<RuleSet>,
    limits: ReadLimits,
    progress: &dyn Progress,
) -> Result<LoadedVersion, RedisSnapshotError> {
    let mut con = target.connect()?;
    let mut attempts = 0;
    loop {
        let version = read_current(target, &mut con)?.ok_or_else(|| {
            RedisSnapshotError::NothingPublished {
                address: target.shown().to_string(),
                prefix: target.prefix().to_string(),
            }
        })?;
        match load_version(target, &version, rules.clone(), limits, progress) {
            Err(error) if error.is_transient() && attempts < 3 => {
                attempts += 1;
                // Only worth another try if `current` moved on meanwhile.
                if read_current(target, &mut con)?.as_deref() == Some(version.as_str()) {
                    return Err(error);
                }
            }
            other => return other,
        }
    }
}

/// Loads one version, compiled with `rules`; all or nothing.
pub fn load_version(
    target: &RedisTarget,
    version: &str,
    rules: Arc<RuleSet>,
    limits: ReadLimits,
    progress: &dyn Progress,
) -> Result<LoadedVersion, RedisSnapshotError> {
    let OpenedVersion { meta, text, state } = open_version(target, version)?;
    let outcome = reader::load(text, rules, progress, limits);
    // A chunk failure surfaces in the loader as a read error at some line; the chunk is the
    // better report.
    let state = take_state(&state);
    if let Some(error) = state.failure {
        return Err(error);
    }
    let snapshot = outcome.map_err(|error| RedisSnapshotError::Refused {
        version: version.to_string(),
        error,
    })?;
    let refuse = |problem: String| RedisSnapshotError::Version {
        version: version.to_string(),
        problem,
    };
    if !state.complete {
        return Err(refuse(
            "the snapshot text ends before the last stored chunk".into(),
        ));
    }
    if snapshot.meta.snapshot_id != meta.snapshot_id || snapshot.meta.persons != meta.persons {
        return Err(refuse(
            "the stored header disagrees with the meta (snapshot id or person count)".into(),
        ));
    }
    Ok(LoadedVersion {
        version: version.to_string(),
        meta,
        snapshot,
    })
}

/// Finds one person's events in a stored version (for `check --explain`), by a streaming scan.
pub fn find_person(
    target: &RedisTarget,
    version: &str,
    insz: Insz,
) -> Result<Option<Person>, RedisSnapshotError> {
    let OpenedVersion { text, state, .. } = open_version(target, version)?;
    let outcome = reader::find_person_in(text, insz);
    if let Some(error) = take_state(&state).failure {
        return Err(error);
    }
    outcome.map_err(|error| RedisSnapshotError::Refused {
        version: version.to_string(),
        error,
    })
}

/// An opened version: its meta, its text as a stream, and the shared state that reports a chunk
/// failure or completion once the stream has been read.
struct OpenedVersion {
    meta: VersionMeta,
    text: Box<dyn BufRead + Send>,
    state: Arc<Mutex<ReadState>>,
}

fn open_version(target: &RedisTarget, version: &str) -> Result<OpenedVersion, RedisSnapshotError> {
    if !super::check_version(version) {
        return Err(RedisSnapshotError::Version {
            version: version.escape_debug().to_string(),
            problem: "not a version number".into(),
        });
    }
    let mut con = target.connect()?;
    let keys = target.keys();
    let raw: Option<Vec<u8>> = redis::cmd("GET")
        .arg(keys.meta(version))
        .query(&mut con)
        .map_err(|e| target.unavailable(e))?;
    let raw = raw.ok_or_else(|| RedisSnapshotError::VersionMissing {
        version: version.to_string(),
    })?;
    let refuse = |problem: String| RedisSnapshotError::Version {
        version: version.to_string(),
        problem,
    };
    let meta: VersionMeta = serde_json::from_slice(&raw).map_err(|e| {
        refuse(format!(
            "the meta is not readable: {}",
            kbi_core::redact::json::<VersionMeta>(&raw, &e)
        ))
    })?;
    meta.check(version).map_err(refuse)?;
    let compression = match meta.compression.as_str() {
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    };
    let state = Arc::new(Mutex::new(ReadState::default()));
    let chunks = ChunkReader {
        con,
        target: target.clone(),
        version: version.to_string(),
        meta: meta.clone(),
        next: 0,
        buf: Vec::new(),
        pos: 0,
        whole: Sha256::new(),
        total: 0,
        state: state.clone(),
        done: false,
    };
    let text = reader::decompress(chunks, compression)
        .map_err(|e| refuse(format!("cannot start decompression: {e}")))?;
    Ok(OpenedVersion { meta, text, state })
}

fn take_state(state: &Mutex<ReadState>) -> ReadState {
    std::mem::take(&mut *state.lock().unwrap_or_else(|p| p.into_inner()))
}

/// What the chunk reader saw, read back after the loader has finished with it.
#[derive(Default)]
struct ReadState {
    /// The first chunk failure; the loader only sees a generic read error.
    failure: Option<RedisSnapshotError>,
    /// Every chunk was read and the whole checksum matched.
    complete: bool,
}

/// The stored bytes of a version, fetched one chunk at a time: at most one chunk is in memory.
struct ChunkReader {
    con: redis::Connection,
    target: RedisTarget,
    version: String,
    meta: VersionMeta,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    whole: Sha256,
    total: u64,
    state: Arc<Mutex<ReadState>>,
    done: bool,
}

impl ChunkReader {
    fn fail(&self, error: RedisSnapshotError) -> io::Error {
        let message = error.to_string();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.failure.get_or_insert(error);
        io::Error::other(message)
    }

    /// Fetches and checks the next chunk; `false` at the end of the version.
    fn fetch(&mut self) -> io::Result<bool> {
        let n = self.next;
        let chunks = self.meta.chunks.len();
        if n == chunks {
            if !self.done {
                self.done = true;
                let digest = hex::encode(std::mem::take(&mut self.whole).finalize());
                if self.total != self.meta.total_bytes || digest != self.meta.sha256 {
                    return Err(self.fail(RedisSnapshotError::Version {
                        version: self.version.clone(),
                        problem: "the SHA-256 of the whole differs from the meta: corrupt".into(),
                    }));
                }
                self.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .complete = true;
            }
            return Ok(false);
        }
        let key = self.target.keys().chunk(&self.version, n);
        let fetched: Result<Option<Vec<u8>>, _> = redis::cmd("GET").arg(&key).query(&mut self.con);
        let chunk_error = |problem| RedisSnapshotError::Chunk {
            version: self.version.clone(),
            chunk: n,
            chunks,
            problem,
        };
        let bytes = match fetched {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(self.fail(chunk_error(ChunkProblem::Missing))),
            Err(e) => {
                let error = self.target.unavailable(e);
                return Err(self.fail(error));
            }
        };
        let expected = &self.meta.chunks[n];
        if bytes.len() as u64 != expected.bytes {
            let problem = ChunkProblem::Size {
                expected: expected.bytes,
                found: bytes.len() as u64,
            };
            return Err(self.fail(chunk_error(problem)));
        }
        if hex::encode(Sha256::digest(&bytes)) != expected.sha256 {
            return Err(self.fail(chunk_error(ChunkProblem::Checksum)));
        }
        self.whole.update(&bytes);
        self.total += bytes.len() as u64;
        self.buf = bytes;
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() {
            if !self.fetch()? {
                return Ok(&[]);
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.buf.len());
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}
