//! Publishing a snapshot file as a new version: validate, store the chunks, write the meta, switch
//! `current` atomically, announce, prune old versions.
//!
//! Order matters for the readers: a version becomes visible only through `current`, and `current`
//! is switched by one Lua script that first checks the meta and every chunk exist and that this
//! publisher still holds the lock. A publish that dies before that leaves `current` as it was; its
//! partial keys are listed in the versions set and removed by the next publish.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::load::read_current;
use super::{
    check_version, ChunkMeta, KeyLayout, RedisSnapshotError, RedisTarget, VersionMeta,
    DEFAULT_CHUNK_BYTES, DEFAULT_KEEP, MAX_CHUNK_BYTES, STORE_FORMAT,
};
use kbi_core::domain::RuleSet;
use kbi_core::io::Progress;
use kbi_core::snapshot::reader;
use kbi_core::snapshot::reader::ReadLimits;

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Versions to keep, the new current one included (at least 1).
    pub keep: usize,
    /// Compressed bytes per chunk.
    pub chunk_bytes: usize,
    /// zstd compression level of the stored text.
    pub zstd_level: i32,
    /// Lifetime of the publisher lock; refreshed after every chunk, so it only has to outlive the
    /// upload of one chunk. A publisher that dies blocks the next one for at most this long.
    pub lock_ttl: Duration,
    /// **Tests only**: stop as if killed after this many chunks were stored (no clean-up, `current`
    /// untouched; the lock is released so the next publish need not wait for it to expire).
    #[doc(hidden)]
    pub interrupt_after_chunks: Option<usize>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            keep: DEFAULT_KEEP,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            zstd_level: 3,
            lock_ttl: Duration::from_secs(30),
            interrupt_after_chunks: None,
        }
    }
}

/// What a publish did.
#[derive(Debug)]
pub struct Published {
    /// The new current version.
    pub version: String,
    /// Its meta.
    pub meta: VersionMeta,
    /// Versions removed (older than the kept ones, or leftovers of interrupted publishes).
    pub removed: Vec<String>,
    /// Set when the new version is current but removing old versions failed (Redis lost right
    /// after the switch): the next publish removes them.
    pub prune_failed: Option<RedisSnapshotError>,
}

/// Validates `path` completely with `rules` and publishes it as the new current version.
///
/// An invalid file is refused with the loader's error before anything is written to Redis.
pub fn publish(
    target: &RedisTarget,
    path: &Path,
    rules: Arc<RuleSet>,
    options: &PublishOptions,
    progress: &dyn Progress,
) -> Result<Published, RedisSnapshotError> {
    if options.keep == 0 {
        return Err(RedisSnapshotError::Option(
            "keep must be at least 1 (the current version)".into(),
        ));
    }
    if options.chunk_bytes == 0 || options.chunk_bytes as u64 > MAX_CHUNK_BYTES {
        return Err(RedisSnapshotError::Option(format!(
            "chunk size must be 1 to {MAX_CHUNK_BYTES} bytes"
        )));
    }
    if options.lock_ttl < Duration::from_millis(100) {
        return Err(RedisSnapshotError::Option(
            "the lock lifetime must be at least 100 ms".into(),
        ));
    }
    // Reachable before the (long) validation, so an operator is not told after minutes.
    let mut con = target.connect()?;
    redis::cmd("PING")
        .query::<String>(&mut con)
        .map_err(|e| target.unavailable(e))?;

    let validated = validate(path, rules.clone(), progress)?;

    let keys = target.keys();
    let token = uuid::Uuid::new_v4().to_string();
    let ttl_ms = options.lock_ttl.as_millis() as u64;
    let acquired: Option<String> = redis::cmd("SET")
        .arg(keys.lock())
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(ttl_ms)
        .query(&mut con)
        .map_err(|e| target.unavailable(e))?;
    if acquired.is_none() {
        let expires_ms: i64 = redis::cmd("PTTL")
            .arg(keys.lock())
            .query(&mut con)
            .map_err(|e| target.unavailable(e))?;
        return Err(RedisSnapshotError::Locked {
            key: keys.lock(),
            expires_ms,
        });
    }
    let mut publisher = Publisher {
        target,
        keys: &keys,
        con: &mut con,
        token: &token,
        ttl_ms,
    };
    let outcome = publisher.run(path, &rules, &validated, options, progress);
    // Best effort: if this fails the lock expires by itself.
    let _ = RELEASE.key(keys.lock()).arg(&token).invoke::<i64>(&mut con);
    outcome
}

/// What the validating pass learnt about the file.
struct Validated {
    meta: kbi_core::domain::SnapshotMeta,
    text_sha256: String,
    text_bytes: u64,
}

/// Loads the file through the real loader, hashing the text as it goes, so the upload can prove
/// it stored exactly the text that was validated.
fn validate(
    path: &Path,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<Validated, RedisSnapshotError> {
    let invalid = |error| RedisSnapshotError::Invalid {
        path: path.display().to_string(),
        error,
    };
    let digest = Arc::new(std::sync::Mutex::new(None));
    let text = reader::open(path).map_err(invalid)?;
    let hashing = HashingBufRead {
        inner: text,
        hasher: Sha256::new(),
        bytes: 0,
        out: digest.clone(),
    };
    // A command line tool: the default read limits (the service passes its settings' own).
    let snapshot =
        reader::load(Box::new(hashing), rules, progress, ReadLimits::default()).map_err(invalid)?;
    let meta = snapshot.meta.clone();
    drop(snapshot);
    let (text_sha256, text_bytes) = digest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    Ok(Validated {
        meta,
        text_sha256,
        text_bytes,
    })
}

/// A `BufRead` that hashes what its consumer consumes; the digest is delivered on drop (the
/// loader drops its reader when it reaches the end).
struct HashingBufRead {
    inner: Box<dyn std::io::BufRead + Send>,
    hasher: Sha256,
    bytes: u64,
    out: Arc<std::sync::Mutex<Option<(String, u64)>>>,
}

impl Read for HashingBufRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl std::io::BufRead for HashingBufRead {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The consumed bytes are the front of the buffer `fill_buf` just returned; asking again
        // does no I/O.
        if let Ok(buf) = self.inner.fill_buf() {
            let n = amt.min(buf.len());
            self.hasher.update(&buf[..n]);
            self.bytes += n as u64;
        }
        self.inner.consume(amt);
    }
}

impl Drop for HashingBufRead {
    fn drop(&mut self) {
        let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = Some((digest, self.bytes));
    }
}

/// Refreshes the lock if it is still ours.
static REFRESH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
          end
          return 0",
    )
});

/// Deletes the lock if it is still ours.
static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
          end
          return 0",
    )
});

/// The atomic switch: KEYS = lock, current, meta, chunks…; ARGV = token, version, channel.
/// Refuses unless the lock is ours and the meta and every chunk exist; then sets `current` and
/// announces the version, all in one step no reader can observe half of.
static SWITCH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then
            return redis.error_reply('the publish lock was lost')
          end
          for i = 3, #KEYS do
            if redis.call('EXISTS', KEYS[i]) == 0 then
              return redis.error_reply('key ' .. KEYS[i] .. ' is missing')
            end
          end
          redis.call('SET', KEYS[2], ARGV[2])
          redis.call('PUBLISH', ARGV[3], ARGV[2])
          return 1",
    )
});

/// One publish while holding the lock.
struct Publisher<'a> {
    target: &'a RedisTarget,
    keys: &'a KeyLayout,
    con: &'a mut redis::Connection,
    token: &'a str,
    ttl_ms: u64,
}

/// A failed step, and whether the partial version should be removed now (not after a simulated
/// crash: the next publish must find and remove it).
struct Failed {
    error: RedisSnapshotError,
    clean_up: bool,
}

impl Publisher<'_> {
    fn run(
        &mut self,
        path: &Path,
        rules: &RuleSet,
        validated: &Validated,
        options: &PublishOptions,
        progress: &dyn Progress,
    ) -> Result<Published, RedisSnapshotError> {
        let number: u64 = redis::cmd("INCR")
            .arg(self.keys.seq())
            .query(self.con)
            .map_err(|e| self.target.unavailable(e))?;
        let version = number.to_string();
        // Registered before the first chunk, so an interrupted publish leaves a findable trace.
        redis::cmd("ZADD")
            .arg(self.keys.versions())
            .arg(number)
            .arg(&version)
            .query::<i64>(self.con)
            .map_err(|e| self.target.unavailable(e))?;
        match self.store(&version, path, rules, validated, options, progress) {
            Ok(meta) => {
                // The switch is done: failing to prune must not report the publish as failed.
                let (removed, prune_failed) = match self.prune(options.keep) {
                    Ok(removed) => (removed, None),
                    Err(error) => (Vec::new(), Some(error)),
                };
                Ok(Published {
                    version,
                    meta,
                    removed,
                    prune_failed,
                })
            }
            Err(failed) => {
                if failed.clean_up {
                    let _ = self.delete_version(&version);
                }
                Err(failed.error)
            }
        }
    }

    fn store(
        &mut self,
        version: &str,
        path: &Path,
        rules: &RuleSet,
        validated: &Validated,
        options: &PublishOptions,
        progress: &dyn Progress,
    ) -> Result<VersionMeta, Failed> {
        let abandon = |problem: String| Failed {
            error: RedisSnapshotError::Abandoned {
                version: version.to_string(),
                problem,
            },
            clean_up: true,
        };
        let redis_failed = |error: RedisSnapshotError| Failed {
            error,
            clean_up: true,
        };
        let mut text =
            reader::open(path).map_err(|e| abandon(format!("cannot read the file again: {e}")))?;
        let mut encoder = zstd::stream::write::Encoder::new(
            Vec::with_capacity(options.chunk_bytes + (1 << 20)),
            options.zstd_level,
        )
        .map_err(|e| abandon(format!("cannot start compression: {e}")))?;
        encoder
            .include_checksum(true)
            .map_err(|e| abandon(format!("cannot start compression: {e}")))?;
        let mut text_hasher = Sha256::new();
        let mut text_bytes = 0u64;
        let mut whole = Sha256::new();
        let mut chunks: Vec<ChunkMeta> = Vec::new();
        let mut block = vec![0u8; 1 << 20];
        progress.start("publishing to Redis", validated.meta.persons);
        loop {
            let n = text
                .read(&mut block)
                .map_err(|e| abandon(format!("cannot read the file again: {e}")))?;
            if n == 0 {
                break;
            }
            let read = &block[..n];
            text_hasher.update(read);
            text_bytes += n as u64;
            progress.advance(read.iter().filter(|&&b| b == b'\n').count() as u64);
            encoder
                .write_all(read)
                .map_err(|e| abandon(format!("compression failed: {e}")))?;
            let buffer = encoder.get_mut();
            while buffer.len() >= options.chunk_bytes {
                let tail = buffer.split_off(options.chunk_bytes);
                let head = std::mem::replace(buffer, tail);
                self.store_chunk(version, head, &mut chunks, &mut whole, options)?;
            }
        }
        let rest = encoder
            .finish()
            .map_err(|e| abandon(format!("compression failed: {e}")))?;
        for piece in rest.chunks(options.chunk_bytes) {
            self.store_chunk(version, piece.to_vec(), &mut chunks, &mut whole, options)?;
        }
        progress.finish();
        let text_sha256 = hex::encode(text_hasher.finalize());
        if text_sha256 != validated.text_sha256 || text_bytes != validated.text_bytes {
            return Err(abandon(
                "the file changed between validation and upload".into(),
            ));
        }
        let meta = VersionMeta {
            store_format: STORE_FORMAT.to_string(),
            version: version.to_string(),
            snapshot_id: validated.meta.snapshot_id.clone(),
            extracted_at: validated
                .meta
                .extracted_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            persons: validated.meta.persons,
            compression: "zstd".to_string(),
            text_bytes,
            text_sha256,
            total_bytes: chunks.iter().map(|c| c.bytes).sum(),
            sha256: hex::encode(whole.finalize()),
            chunks,
            published_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            validated_with_rules: rules.version.clone(),
        };
        let json = serde_json::to_vec(&meta)
            .map_err(|e| abandon(format!("cannot encode the meta: {e}")))?;
        redis::cmd("SET")
            .arg(self.keys.meta(version))
            .arg(json)
            .query::<()>(self.con)
            .map_err(|e| redis_failed(self.target.unavailable(e)))?;
        let mut switch = SWITCH.prepare_invoke();
        switch
            .key(self.keys.lock())
            .key(self.keys.current())
            .key(self.keys.meta(version));
        for n in 0..meta.chunks.len() {
            switch.key(self.keys.chunk(version, n));
        }
        switch.arg(self.token).arg(version).arg(self.keys.channel());
        switch.invoke::<i64>(self.con).map_err(|e| {
            if is_connection_error(&e) {
                redis_failed(self.target.unavailable(e))
            } else {
                abandon(format!("the switch was refused: {e}"))
            }
        })?;
        Ok(meta)
    }

    fn store_chunk(
        &mut self,
        version: &str,
        bytes: Vec<u8>,
        chunks: &mut Vec<ChunkMeta>,
        whole: &mut Sha256,
        options: &PublishOptions,
    ) -> Result<(), Failed> {
        let n = chunks.len();
        whole.update(&bytes);
        chunks.push(ChunkMeta {
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
        redis::cmd("SET")
            .arg(self.keys.chunk(version, n))
            .arg(bytes)
            .query::<()>(self.con)
            .map_err(|e| Failed {
                error: self.target.unavailable(e),
                clean_up: true,
            })?;
        let refreshed: i64 = REFRESH
            .key(self.keys.lock())
            .arg(self.token)
            .arg(self.ttl_ms)
            .invoke(self.con)
            .map_err(|e| Failed {
                error: self.target.unavailable(e),
                clean_up: true,
            })?;
        if refreshed != 1 {
            return Err(Failed {
                error: RedisSnapshotError::Abandoned {
                    version: version.to_string(),
                    problem:
                        "the publish lock expired (a chunk took longer than the lock lifetime)"
                            .into(),
                },
                clean_up: true,
            });
        }
        if options.interrupt_after_chunks == Some(chunks.len()) {
            return Err(Failed {
                error: RedisSnapshotError::Abandoned {
                    version: version.to_string(),
                    problem: format!("interrupted after {} chunks (test hook)", chunks.len()),
                },
                clean_up: false,
            });
        }
        Ok(())
    }

    /// Keeps `current` and the `keep − 1` newest complete versions older than it; removes every
    /// other version (older ones, and leftovers of interrupted publishes).
    fn prune(&mut self, keep: usize) -> Result<Vec<String>, RedisSnapshotError> {
        let current = read_current(self.target, self.con)?;
        let mut entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.keys.versions())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(self.con)
            .map_err(|e| self.target.unavailable(e))?;
        entries.sort_by(|a, b| b.1.total_cmp(&a.1));
        let current_score = entries
            .iter()
            .find(|(v, _)| Some(v) == current.as_ref())
            .map(|(_, s)| *s);
        let mut kept_older = 0;
        let mut removed = Vec::new();
        for (version, score) in entries {
            if Some(&version) == current.as_ref() {
                continue;
            }
            if !check_version(&version) {
                // Not ours (edited by hand): forget it, but never build a key pattern from it.
                redis::cmd("ZREM")
                    .arg(self.keys.versions())
                    .arg(&version)
                    .query::<i64>(self.con)
                    .map_err(|e| self.target.unavailable(e))?;
                continue;
            }
            let older = current_score.is_some_and(|c| score < c);
            if older && kept_older + 1 < keep {
                let complete: bool = redis::cmd("EXISTS")
                    .arg(self.keys.meta(&version))
                    .query(self.con)
                    .map_err(|e| self.target.unavailable(e))?;
                if complete {
                    kept_older += 1;
                    continue;
                }
            }
            self.delete_version(&version)?;
            removed.push(version);
        }
        Ok(removed)
    }

    /// Removes every key of a version, then the version from the set.
    fn delete_version(&mut self, version: &str) -> Result<(), RedisSnapshotError> {
        let pattern = self.keys.version_pattern(version);
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(self.con)
                .map_err(|e| self.target.unavailable(e))?;
            if !found.is_empty() {
                // UNLINK frees the large values in the background instead of blocking Redis.
                redis::cmd("UNLINK")
                    .arg(&found)
                    .query::<i64>(self.con)
                    .map_err(|e| self.target.unavailable(e))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        redis::cmd("ZREM")
            .arg(self.keys.versions())
            .arg(version)
            .query::<i64>(self.con)
            .map_err(|e| self.target.unavailable(e))?;
        Ok(())
    }
}

/// Whether a client error means the connection (retry later) rather than a refused command.
fn is_connection_error(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}
