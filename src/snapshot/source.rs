//! Where a snapshot comes from: a file, or the current version published in Redis. Every command
//! that takes `--snapshot` parses it into a [`SnapshotSource`], so `check`, `snapshot validate`,
//! `serve` and `premium-list` accept the same sources.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::redis::{self as redis_source, RedisSnapshotError, RedisTarget};
use kbi_core::domain::{CompiledSnapshot, Insz, RuleSet};
use kbi_core::io::Progress;
use kbi_core::snapshot::person::Person;
use kbi_core::snapshot::reader::{self, ReadLimits, SnapshotError};

/// A snapshot source, parsed from a `--snapshot` argument: `redis://…` (with an
/// optional `?prefix=P`, default `kbi`) names the current version in Redis, anything else a file.
#[derive(Debug, Clone)]
pub enum SnapshotSource {
    /// A JSON Lines file, optionally .gz or .zst.
    File(PathBuf),
    /// The version `current` points at in Redis.
    Redis(RedisTarget),
}

/// Why a snapshot could not be loaded from its source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file was unreadable or invalid (the message names the line).
    #[error("snapshot {path} refused: {error}")]
    File {
        /// The file.
        path: String,
        /// The loader's error.
        error: SnapshotError,
    },
    /// Redis was unreachable, or the version was refused.
    #[error(transparent)]
    Redis(#[from] RedisSnapshotError),
}

impl FromStr for SnapshotSource {
    type Err = RedisSnapshotError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `rediss://` goes to the Redis parser, which explains why it is refused.
        if text.starts_with("redis://") || text.starts_with("rediss://") {
            Ok(SnapshotSource::Redis(RedisTarget::parse(text, None)?))
        } else {
            Ok(SnapshotSource::File(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for SnapshotSource {
    /// The path, or the Redis address with its password redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotSource::File(path) => write!(f, "{}", path.display()),
            SnapshotSource::Redis(target) => write!(f, "{target}"),
        }
    }
}

/// Which exact content a load came from, to find a person's events in the same content later
/// (`check --explain`).
#[derive(Debug, Clone)]
pub enum Pinned {
    /// The file (read again).
    File(PathBuf),
    /// This version in Redis (not whatever is current by then).
    Redis {
        /// Where.
        target: RedisTarget,
        /// Which version.
        version: String,
    },
}

impl Pinned {
    /// The person's line in the loaded content, by a streaming scan.
    pub fn find_person(&self, insz: Insz) -> Result<Option<Person>, SourceError> {
        match self {
            Pinned::File(path) => {
                reader::find_person(path, insz).map_err(|error| file(path, error))
            }
            Pinned::Redis { target, version } => {
                Ok(redis_source::find_person(target, version, insz)?)
            }
        }
    }
}

fn file(path: &Path, error: SnapshotError) -> SourceError {
    SourceError::File {
        path: path.display().to_string(),
        error,
    }
}

impl SnapshotSource {
    /// Loads, validates and compiles the snapshot with `rules`, read under `limits`; all or
    /// nothing.
    pub fn load(
        &self,
        rules: Arc<RuleSet>,
        limits: ReadLimits,
        progress: &dyn Progress,
    ) -> Result<CompiledSnapshot, SourceError> {
        Ok(self.load_pinned(rules, limits, progress)?.0)
    }

    /// [`SnapshotSource::load`] that stops reading (with an error) once `abandoned` is set: a
    /// reload that took too long must not go on to swap its result in, nor keep reading.
    pub fn load_abandonable(
        &self,
        rules: Arc<RuleSet>,
        limits: ReadLimits,
        progress: &dyn Progress,
        abandoned: Arc<AtomicBool>,
    ) -> Result<CompiledSnapshot, SourceError> {
        match self {
            SnapshotSource::File(path) => {
                let text = reader::open(path).map_err(|error| file(path, error))?;
                let text = Box::new(Abandonable {
                    inner: text,
                    abandoned,
                });
                reader::load(text, rules, progress, limits).map_err(|error| file(path, error))
            }
            // The Redis client has its own timeouts.
            SnapshotSource::Redis(_) => self.load(rules, limits, progress),
        }
    }

    /// [`SnapshotSource::load`], also telling which content was loaded (the Redis version).
    pub fn load_pinned(
        &self,
        rules: Arc<RuleSet>,
        limits: ReadLimits,
        progress: &dyn Progress,
    ) -> Result<(CompiledSnapshot, Pinned), SourceError> {
        match self {
            SnapshotSource::File(path) => {
                let text = reader::open(path).map_err(|error| file(path, error))?;
                let snapshot = reader::load(text, rules, progress, limits)
                    .map_err(|error| file(path, error))?;
                Ok((snapshot, Pinned::File(path.clone())))
            }
            SnapshotSource::Redis(target) => {
                let loaded = redis_source::load_current(target, rules, limits, progress)?;
                Ok((
                    loaded.snapshot,
                    Pinned::Redis {
                        target: target.clone(),
                        version: loaded.version,
                    },
                ))
            }
        }
    }
}

/// A text stream that fails its next read once `abandoned` is set.
struct Abandonable {
    inner: Box<dyn BufRead + Send>,
    abandoned: Arc<AtomicBool>,
}

impl Abandonable {
    fn check(&self) -> std::io::Result<()> {
        if self.abandoned.load(Ordering::Relaxed) {
            Err(std::io::Error::other(
                "the reload was abandoned (snapshot.reload_timeout_seconds)",
            ))
        } else {
            Ok(())
        }
    }
}

impl Read for Abandonable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl BufRead for Abandonable {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart_by_scheme() {
        assert!(matches!(
            "data/demo-snapshot.jsonl".parse::<SnapshotSource>(),
            Ok(SnapshotSource::File(_))
        ));
        assert!(matches!(
            "redis://127.0.0.1:6379/2?prefix=acc".parse::<SnapshotSource>(),
            Ok(SnapshotSource::Redis(t)) if t.prefix() == "acc"
        ));
        assert!("redis://h?prefix=*".parse::<SnapshotSource>().is_err());
    }
}
