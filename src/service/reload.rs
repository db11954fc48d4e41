//! Loading snapshots while serving: the new index is built on a blocking thread beside the one in
//! use, and swapped in only when it is complete and valid. A failed load changes nothing.
//!
//! One load at a time (a mutex): two overlapping reloads would hold three indexes at once, and
//! memory during a swap must stay within twice the steady state.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::settings::SnapshotOrigin;
use super::state::AppState;
use crate::domain::{CompiledSnapshot, RuleSet};
use crate::snapshot::reader::{self, SnapshotError};
use crate::snapshot::{Silent, SnapshotSource, SourceError};
use crate::telemetry::metrics::{ReloadOutcome, ReloadSource};

/// The synthetic demonstration snapshot, served when no source is configured.
pub const DEMO_SNAPSHOT: &[u8] = include_bytes!("../../data/demo-snapshot.jsonl");

/// What a successful load put in use.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub snapshot_id: String,
    pub extracted_at: String,
    pub persons: u64,
    pub rule_set: String,
    pub load_ms: u128,
}

/// Why a load was not put in use: the old snapshot keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The source could not be read (file missing, Redis down).
    #[error("snapshot source unavailable: {0}")]
    Unavailable(String),
    /// The content was read but is invalid.
    #[error("snapshot refused: {0}")]
    Refused(String),
}

/// Loads snapshots from the configured origin into the shared store.
pub struct Reloader {
    origin: SnapshotOrigin,
    rules: Arc<RuleSet>,
    state: Arc<AppState>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(origin: SnapshotOrigin, rules: Arc<RuleSet>, state: Arc<AppState>) -> Self {
        Reloader {
            origin,
            rules,
            state,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    fn source_label(&self) -> ReloadSource {
        match self.origin {
            SnapshotOrigin::Source(SnapshotSource::Redis(_)) => ReloadSource::Redis,
            _ => ReloadSource::File,
        }
    }

    /// Loads the origin's snapshot now and swaps it in; on failure the snapshot in use stays.
    pub async fn reload(&self) -> Result<Loaded, ReloadError> {
        let _one = self.one_at_a_time.lock().await;
        let origin = self.origin.clone();
        let rules = self.rules.clone();
        let state = self.state.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let snapshot = load(&origin, rules)?;
            Ok(install(&state, snapshot))
        })
        .await
        .unwrap_or_else(|_| Err(ReloadError::Refused("the loader panicked".into())));
        let metrics = &self.state.metrics;
        match outcome {
            Ok(mut loaded) => {
                loaded.load_ms = started.elapsed().as_millis();
                metrics.reload(self.source_label(), ReloadOutcome::Ok);
                tracing::info!(
                    snapshot_id = %loaded.snapshot_id,
                    persons = loaded.persons,
                    load_ms = loaded.load_ms,
                    "snapshot in use"
                );
                Ok(loaded)
            }
            Err(error) => {
                let outcome = match error {
                    ReloadError::Unavailable(_) => ReloadOutcome::Unavailable,
                    ReloadError::Refused(_) => ReloadOutcome::Refused,
                };
                metrics.reload(self.source_label(), outcome);
                tracing::warn!(%error, "snapshot not loaded; the snapshot in use (if any) keeps serving");
                Err(error)
            }
        }
    }
}

/// Reads, validates and compiles the origin's snapshot (blocking).
pub fn load(origin: &SnapshotOrigin, rules: Arc<RuleSet>) -> Result<CompiledSnapshot, ReloadError> {
    match origin {
        SnapshotOrigin::Embedded => reader::load_bytes(DEMO_SNAPSHOT.to_vec(), rules, &Silent)
            .map_err(|e| ReloadError::Refused(format!("embedded demo snapshot: {e}"))),
        SnapshotOrigin::Source(source) => source.load(rules, &Silent).map_err(classify),
    }
}

fn classify(error: SourceError) -> ReloadError {
    let transient = match &error {
        SourceError::File { error, .. } => matches!(error, SnapshotError::Open { .. }),
        SourceError::Redis(error) => error.is_transient(),
    };
    if transient {
        ReloadError::Unavailable(error.to_string())
    } else {
        ReloadError::Refused(error.to_string())
    }
}

/// Swaps `snapshot` in, updates the snapshot metrics, and frees the previous one here (the
/// caller is on a blocking thread: freeing a large index takes a while).
pub fn install(state: &AppState, snapshot: CompiledSnapshot) -> Loaded {
    let loaded = Loaded {
        snapshot_id: snapshot.meta.snapshot_id.clone(),
        extracted_at: snapshot
            .meta
            .extracted_at
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        persons: snapshot.meta.persons,
        rule_set: snapshot.rules.version.clone(),
        load_ms: 0,
    };
    state
        .metrics
        .snapshot_loaded(&snapshot.meta, &snapshot.rules.version);
    let previous = state.store.swap(Arc::new(snapshot));
    drop(previous);
    loaded
}
