//! Snapshot distribution through Redis: many replicas, one truth.
//!
//! `snapshot publish` validates a snapshot file completely, stores its text (zstd-compressed, in
//! chunks of a few MiB, each with its SHA-256) under a new **version**, and only when every chunk
//! and the meta are written switches `current` atomically and announces it on a channel. Every
//! replica compiles the stored text with its own rules through the same [`reader::load`] path as a
//! file, so the index built from Redis answers exactly like the one built from the file
//! (`snapshot-format.md`, "Same answer from every copy").
//!
//! Key layout (prefix `kbi` by default; `docs/redis.md` has the whole picture):
//!
//! | key | type | content |
//! |---|---|---|
//! | `P:snapshot:current` | string | the version replicas serve |
//! | `P:snapshot:seq` | string | counter that numbers versions |
//! | `P:snapshot:versions` | sorted set | every version started (score = its number); registered *before* its chunks so the leftovers of an interrupted publish can be found and removed |
//! | `P:snapshot:lock` | string | the publisher's lock token; expires unless refreshed |
//! | `P:snapshot:V:meta` | string | [`VersionMeta`] as JSON, written after the last chunk |
//! | `P:snapshot:V:chunk:N` | string | consecutive slices of the compressed text |
//! | channel `P:snapshot:events` | pub/sub | the new version number, after each switch |
//!
//! [`reader::load`]: super::reader::load

use std::time::Duration;

use serde::{Deserialize, Serialize};

use kbi_core::snapshot::reader::SnapshotError;

mod load;
mod publish;
mod watch;

pub use load::{current_version, find_person, load_current, load_version, LoadedVersion};
pub use publish::{publish, PublishOptions, Published};
pub use watch::{watch_redis, WatchObserver, WatchOptions, WatchOutcome};

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "kbi";
/// How many versions a publish keeps by default (the current one included).
pub const DEFAULT_KEEP: usize = 3;
/// Compressed bytes per chunk by default: large enough that a 10 M-person snapshot is a few dozen
/// round trips, small enough that a replica holds only one chunk of text at a time.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;
/// The layout of what is stored; a reader refuses any other.
pub const STORE_FORMAT: &str = "kbi-redis-snapshot/1";

/// Refuse metas that would make a reader allocate absurd amounts (a corrupt or hostile meta).
const MAX_CHUNKS: usize = 1_000_000;
const MAX_CHUNK_BYTES: u64 = 256 << 20;

/// Waiting for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One command (a chunk of a few MiB) taking longer than this means Redis is not usable.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis server and a key prefix: where snapshots are published and read.
///
/// The URL may carry a password; it is only ever shown redacted ([`RedisTarget::shown`]), so it
/// cannot reach a log or an error text.
#[derive(Clone)]
pub struct RedisTarget {
    url: String,
    prefix: String,
    shown: String,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl RedisTarget {
    /// Parses `redis://[USER:PASSWORD@]HOST[:PORT][/DB][?prefix=P]`. `prefix`,
    /// when given, must agree with a `prefix` in the URL; the default is [`DEFAULT_PREFIX`].
    pub fn parse(address: &str, prefix: Option<&str>) -> Result<RedisTarget, RedisSnapshotError> {
        let shown = redact(address);
        let bad = |problem: String| RedisSnapshotError::Address {
            address: shown.clone(),
            problem,
        };
        if address.starts_with("rediss://") {
            // The client is built without TLS: the crypto provider belongs to the TLS set-up of
            // the service as a whole, not to this adapter.
            return Err(bad(
                "rediss:// (TLS) is not supported by this build: reach Redis over a private \
                 network or a local TLS tunnel and use redis://"
                    .into(),
            ));
        }
        if !address.starts_with("redis://") {
            return Err(bad("a Redis source must start with redis://".into()));
        }
        let (base, query) = match address.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (address, None),
        };
        let mut url_prefix = None;
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("prefix", value)) => url_prefix = Some(value),
                _ if pair.is_empty() => {}
                _ => kept.push(pair),
            }
        }
        let prefix = match (prefix, url_prefix) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(format!(
                    "the prefix `{a}` disagrees with `prefix={b}` in the URL"
                )))
            }
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => DEFAULT_PREFIX,
        };
        check_prefix(prefix).map_err(bad)?;
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // The crate's own parse errors may quote the URL; ours never shows the password.
        redis::Client::open(url.as_str()).map_err(|_| {
            bad("not a valid Redis URL (redis://[USER:PASSWORD@]HOST[:PORT][/DB])".into())
        })?;
        let shown = if prefix == DEFAULT_PREFIX {
            redact(&url)
        } else {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{}{sep}prefix={prefix}", redact(&url))
        };
        Ok(RedisTarget {
            url,
            prefix: prefix.to_string(),
            shown,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The address with any password replaced by `***`, for logs and errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The key names under this target's prefix.
    pub fn keys(&self) -> KeyLayout {
        KeyLayout::new(&self.prefix)
    }

    pub(crate) fn client(&self) -> Result<redis::Client, RedisSnapshotError> {
        redis::Client::open(self.url.as_str()).map_err(|e| self.unavailable(e))
    }

    /// A blocking connection with timeouts, so a hung Redis cannot hang a load forever.
    pub(crate) fn connect(&self) -> Result<redis::Connection, RedisSnapshotError> {
        let client = self.client()?;
        let con = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.unavailable(e))?;
        con.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| self.unavailable(e))?;
        con.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| self.unavailable(e))?;
        Ok(con)
    }

    pub(crate) fn unavailable(&self, error: redis::RedisError) -> RedisSnapshotError {
        RedisSnapshotError::Unavailable {
            address: self.shown.clone(),
            error,
        }
    }
}

/// Prefixes are restricted so they can never act as a glob in `SCAN MATCH` or split a key oddly.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the prefix `{}` must be 1 to 64 characters of A-Z, a-z, 0-9, `_`, `.`, `:`, `-`",
            prefix.escape_debug()
        ))
    }
}

/// Replaces the user-info part of a URL (`user:password@`) by `***@`.
fn redact(address: &str) -> String {
    let Some(scheme_end) = address.find("://") else {
        return address.to_string();
    };
    let rest = &address[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &address[..scheme_end + 3], &rest[at..]),
        None => address.to_string(),
    }
}

/// The names of the keys and channel under one prefix (see the module documentation).
#[derive(Debug, Clone)]
pub struct KeyLayout {
    base: String,
}

impl KeyLayout {
    /// The layout under `prefix` (not checked: use [`RedisTarget::parse`] for input).
    pub fn new(prefix: &str) -> KeyLayout {
        KeyLayout {
            base: format!("{prefix}:snapshot"),
        }
    }
    /// The pointer to the version replicas serve.
    pub fn current(&self) -> String {
        format!("{}:current", self.base)
    }
    /// The counter that numbers versions.
    pub fn seq(&self) -> String {
        format!("{}:seq", self.base)
    }
    /// The sorted set of started versions.
    pub fn versions(&self) -> String {
        format!("{}:versions", self.base)
    }
    /// The publisher lock.
    pub fn lock(&self) -> String {
        format!("{}:lock", self.base)
    }
    /// The notification channel.
    pub fn channel(&self) -> String {
        format!("{}:events", self.base)
    }
    /// A version's meta.
    pub fn meta(&self, version: &str) -> String {
        format!("{}:{version}:meta", self.base)
    }
    /// A version's chunk `n` (from 0).
    pub fn chunk(&self, version: &str, n: usize) -> String {
        format!("{}:{version}:chunk:{n}", self.base)
    }
    /// A `SCAN MATCH` pattern for every key of a version.
    pub fn version_pattern(&self, version: &str) -> String {
        format!("{}:{version}:*", self.base)
    }
}

/// Versions are decimal numbers; anything else read from Redis is refused before it becomes part
/// of a key name.
pub(crate) fn check_version(version: &str) -> bool {
    !version.is_empty() && version.len() <= 20 && version.bytes().all(|b| b.is_ascii_digit())
}

/// What a publish stored about one version (the `…:meta` key, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionMeta {
    /// [`STORE_FORMAT`].
    pub store_format: String,
    /// The version number, as in the key names.
    pub version: String,
    /// From the snapshot header.
    pub snapshot_id: String,
    /// From the snapshot header (RFC 3339).
    pub extracted_at: String,
    /// From the snapshot header (and checked when published).
    pub persons: u64,
    /// `zstd` or `none`: how the chunks encode the snapshot text.
    pub compression: String,
    /// Bytes of the snapshot text (uncompressed JSON Lines).
    pub text_bytes: u64,
    /// SHA-256 (hex) of the snapshot text: identical to `sha256sum` of the uncompressed file.
    pub text_sha256: String,
    /// Bytes stored over all chunks.
    pub total_bytes: u64,
    /// SHA-256 (hex) of all chunks concatenated.
    pub sha256: String,
    /// Each chunk in order.
    pub chunks: Vec<ChunkMeta>,
    /// When the version was published (RFC 3339).
    pub published_at: String,
    /// The rule-set version the publisher validated with (informational: replicas compile with
    /// their own rules).
    pub validated_with_rules: String,
}

/// One chunk of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkMeta {
    /// Stored bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the stored bytes.
    pub sha256: String,
}

impl VersionMeta {
    /// Checks what a reader relies on before fetching anything.
    fn check(&self, version: &str) -> Result<(), String> {
        if self.store_format != STORE_FORMAT {
            return Err(format!(
                "stored in format `{}`, this program reads `{STORE_FORMAT}`",
                self.store_format.escape_debug()
            ));
        }
        if self.version != version {
            return Err(format!(
                "the meta names version `{}`",
                self.version.escape_debug()
            ));
        }
        if !matches!(self.compression.as_str(), "zstd" | "none") {
            return Err(format!(
                "unknown compression `{}`",
                self.compression.escape_debug()
            ));
        }
        if self.chunks.is_empty() || self.chunks.len() > MAX_CHUNKS {
            return Err(format!(
                "{} chunks (expected 1 to {MAX_CHUNKS})",
                self.chunks.len()
            ));
        }
        let mut total = 0u64;
        for (n, chunk) in self.chunks.iter().enumerate() {
            if chunk.bytes == 0 || chunk.bytes > MAX_CHUNK_BYTES || !is_sha256_hex(&chunk.sha256) {
                return Err(format!("the meta of chunk {n} is invalid"));
            }
            total += chunk.bytes;
        }
        if total != self.total_bytes || !is_sha256_hex(&self.sha256) {
            return Err("the meta's total size or checksum is invalid".into());
        }
        Ok(())
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What went wrong with a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProblem {
    /// The key does not exist (deleted by a newer publish's clean-up, or by hand).
    Missing,
    /// The stored size differs from the meta.
    Size {
        /// Bytes the meta announces.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// The SHA-256 of the stored bytes differs from the meta.
    Checksum,
}

impl std::fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkProblem::Missing => f.write_str("missing"),
            ChunkProblem::Size { expected, found } => {
                write!(f, "{found} bytes stored, the meta says {expected}: corrupt")
            }
            ChunkProblem::Checksum => f.write_str("SHA-256 mismatch: corrupt"),
        }
    }
}

/// Why publishing to or loading from Redis failed. Messages name the address (password
/// redacted), version, chunk or line, never an INSZ or stored data.
#[derive(Debug, thiserror::Error)]
pub enum RedisSnapshotError {
    /// The address or prefix cannot be used.
    #[error("{address}: {problem}")]
    Address {
        /// Redacted address.
        address: String,
        /// What is wrong.
        problem: String,
    },
    /// Redis could not be reached or failed a command; worth retrying.
    #[error("Redis {address} unreachable or failing: {error}")]
    Unavailable {
        /// Redacted address.
        address: String,
        /// The client's error (no stored data in it).
        error: redis::RedisError,
    },
    /// `current` is not set: nothing was ever published under this prefix.
    #[error("Redis {address}: no snapshot published under prefix `{prefix}` (`{prefix}:snapshot:current` is not set)")]
    NothingPublished {
        /// Redacted address.
        address: String,
        /// The prefix.
        prefix: String,
    },
    /// `current` holds something that is not a version number.
    #[error("Redis {address}: `{key}` does not hold a version number")]
    BadPointer {
        /// Redacted address.
        address: String,
        /// The key.
        key: String,
    },
    /// The version's meta is gone (a newer publish removed it, or that publish never completed).
    #[error("version {version}: no meta (removed by a newer publish, or never completed)")]
    VersionMissing {
        /// The version.
        version: String,
    },
    /// The version as a whole is refused (meta unreadable, total checksum, content vs. meta).
    #[error("version {version} refused: {problem}")]
    Version {
        /// The version.
        version: String,
        /// What is wrong.
        problem: String,
    },
    /// One chunk is missing or corrupt: the version is refused.
    #[error("version {version} refused: chunk {chunk} of {chunks} {problem}")]
    Chunk {
        /// The version.
        version: String,
        /// Chunk number, from 0.
        chunk: usize,
        /// Number of chunks of the version.
        chunks: usize,
        /// What is wrong.
        problem: ChunkProblem,
    },
    /// The stored text is not a valid snapshot (the loader's error names the line).
    #[error("version {version} refused: {error}")]
    Refused {
        /// The version.
        version: String,
        /// The loader's error.
        error: SnapshotError,
    },
    /// The file to publish is not a valid snapshot; nothing was written to Redis.
    #[error("snapshot {path} refused, nothing was published: {error}")]
    Invalid {
        /// The file.
        path: String,
        /// The loader's error.
        error: SnapshotError,
    },
    /// Another publish holds the lock.
    #[error("another publish is running (`{key}` is held; if that publish died, the lock expires in {expires_ms} ms)")]
    Locked {
        /// The lock key.
        key: String,
        /// Remaining lifetime of the lock.
        expires_ms: i64,
    },
    /// A publish stopped before switching `current`; `current` is unchanged and the partial version
    /// is removed by the next publish.
    #[error("publish of version {version} abandoned, `current` unchanged: {problem}")]
    Abandoned {
        /// The version that was being written.
        version: String,
        /// Why.
        problem: String,
    },
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Option(String),
}

impl RedisSnapshotError {
    /// Whether retrying later may succeed without anyone publishing anything (Redis unreachable,
    /// nothing published yet, the version removed while it was being read). The other errors
    /// refuse a version for good.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RedisSnapshotError::Unavailable { .. }
                | RedisSnapshotError::NothingPublished { .. }
                | RedisSnapshotError::VersionMissing { .. }
                | RedisSnapshotError::Chunk {
                    problem: ChunkProblem::Missing,
                    ..
                }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://:s3cret@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact("redis://u:p@ss@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        let target = RedisTarget::parse("redis://:s3cret@127.0.0.1:7/0?prefix=x", None).unwrap();
        assert!(!format!("{target} {target:?}").contains("s3cret"));
        assert_eq!(target.prefix(), "x");
        assert_eq!(target.shown(), "redis://***@127.0.0.1:7/0?prefix=x");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(RedisTarget::parse("redis://h", Some("a*b")).is_err());
        assert!(RedisTarget::parse("redis://h?prefix=a", Some("b")).is_err());
        assert!(RedisTarget::parse("http://h", None).is_err());
        let tls = RedisTarget::parse("rediss://:pw@h", None).unwrap_err();
        assert!(tls.to_string().contains("TLS") && !tls.to_string().contains("pw"));
        let t = RedisTarget::parse("redis://h?prefix=a", Some("a")).unwrap();
        assert_eq!(t.keys().current(), "a:snapshot:current");
        let err = RedisTarget::parse("redis://:pw@h:notaport", None).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn versions_are_numbers() {
        assert!(check_version("12"));
        assert!(!check_version("1*"));
        assert!(!check_version(""));
    }
}
