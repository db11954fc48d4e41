//! Where a snapshot comes from: a file, or the current version published in Redis. Every command
//! that takes `--snapshot` parses it into a [`SnapshotSource`], so `check`, `snapshot validate`,
//! `serve` and `premium-list` accept the same sources.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::progress::Progress;
use super::reader::{self, SnapshotError};
use super::redis::{self as redis_source, RedisSnapshotError, RedisTarget};
use crate::domain::{CompiledSnapshot, Insz, RuleSet};
use crate::snapshot::person::Person;

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
    /// Loads, validates and compiles the snapshot with `rules`; all or nothing.
    pub fn load(
        &self,
        rules: Arc<RuleSet>,
        progress: &dyn Progress,
    ) -> Result<CompiledSnapshot, SourceError> {
        Ok(self.load_pinned(rules, progress)?.0)
    }

    /// [`SnapshotSource::load`], also telling which content was loaded (the Redis version).
    pub fn load_pinned(
        &self,
        rules: Arc<RuleSet>,
        progress: &dyn Progress,
    ) -> Result<(CompiledSnapshot, Pinned), SourceError> {
        match self {
            SnapshotSource::File(path) => {
                let snapshot =
                    reader::load_path(path, rules, progress).map_err(|error| file(path, error))?;
                Ok((snapshot, Pinned::File(path.clone())))
            }
            SnapshotSource::Redis(target) => {
                let loaded = redis_source::load_current(target, rules, progress)?;
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
