//! Loading snapshots while serving: the new index is built on a blocking thread beside the one in
//! use, and swapped in only when it is complete and valid. A failed load changes nothing.
//!
//! One load at a time: two overlapping reloads would hold three indexes at once, and memory
//! during a swap must stay within twice the steady state. A reload asked for while another runs
//! is answered at once ("reload in progress", 409) instead of queueing behind it, and a load that
//! exceeds `snapshot.reload_timeout_seconds` is abandoned: its caller gets a 503, it stops at its
//! next read and never swaps its result in, and the next reload may start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::settings::SnapshotOrigin;
use super::state::AppState;
use crate::snapshot::{SnapshotSource, SourceError};
use crate::telemetry::metrics::{ReloadOutcome, ReloadSource};
use kbi_core::domain::{CompiledSnapshot, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::reader::{self, ReadLimits, SnapshotError};

// The synthetic demonstration snapshot, served when no source is configured.
use kbi_core::snapshot::generate::DEMO_SNAPSHOT;

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
    /// Another reload is running; this one was not started.
    #[error("a snapshot reload is already in progress; try again when it has finished")]
    InProgress,
    /// The load took longer than allowed and was abandoned; the old snapshot keeps serving.
    #[error(
        "the reload did not finish within {0} s (snapshot.reload_timeout_seconds) and was \
         abandoned; the snapshot in use keeps serving"
    )]
    TimedOut(u64),
}

/// Loads snapshots from the configured origin into the shared store.
pub struct Reloader {
    origin: SnapshotOrigin,
    rules: Arc<RuleSet>,
    state: Arc<AppState>,
    /// Held (try-locked, never waited for) by the reload in progress.
    one_at_a_time: tokio::sync::Mutex<()>,
    timeout: Duration,
    /// Bounds on reading a snapshot (`[snapshot]` settings).
    limits: ReadLimits,
}

/// Where a load stands, decided under one lock so that "abandon" and "swap in" exclude each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Loading,
    Installed,
    Abandoned,
}

impl Reloader {
    pub fn new(
        origin: SnapshotOrigin,
        rules: Arc<RuleSet>,
        state: Arc<AppState>,
        timeout: Duration,
        limits: ReadLimits,
    ) -> Self {
        Reloader {
            origin,
            rules,
            state,
            one_at_a_time: tokio::sync::Mutex::new(()),
            timeout,
            limits,
        }
    }

    fn source_label(&self) -> ReloadSource {
        match self.origin {
            SnapshotOrigin::Source(SnapshotSource::Redis(_)) => ReloadSource::Redis,
            _ => ReloadSource::File,
        }
    }

    /// Reads the client registry and the protocol files again and swaps them in together; on
    /// failure the ones in use stay (logged, counted in `kbi_config_reloads_total`). Asked for
    /// with every snapshot reload by `SIGHUP` and `POST /admin/snapshot/reload`.
    pub fn reload_config(&self) -> Result<(), String> {
        super::policy::reload(&self.state)
    }

    /// Loads the origin's snapshot now and swaps it in; on failure the snapshot in use stays.
    pub async fn reload(&self) -> Result<Loaded, ReloadError> {
        let Ok(_one) = self.one_at_a_time.try_lock() else {
            tracing::warn!("reload not started: another reload is in progress");
            return Err(ReloadError::InProgress);
        };
        let origin = self.origin.clone();
        let rules = self.rules.clone();
        let limits = self.limits;
        let state = self.state.clone();
        let started = Instant::now();
        let abandoned = Arc::new(AtomicBool::new(false));
        let stage = Arc::new(Mutex::new(Stage::Loading));
        let task = tokio::task::spawn_blocking({
            let abandoned = abandoned.clone();
            let stage = stage.clone();
            move || {
                let snapshot = load_abandonable(&origin, rules, limits, abandoned)?;
                let mut stage = stage.lock().unwrap_or_else(|p| p.into_inner());
                if *stage == Stage::Abandoned {
                    drop(stage);
                    drop(snapshot);
                    return Err(ReloadError::TimedOut(0));
                }
                let loaded = install(&state, snapshot);
                *stage = Stage::Installed;
                Ok(loaded)
            }
        });
        let joined = match tokio::time::timeout(self.timeout, task).await {
            Ok(joined) => joined,
            Err(_elapsed) => {
                let mut stage = stage.lock().unwrap_or_else(|p| p.into_inner());
                if *stage == Stage::Installed {
                    // Swapped in just as the time ran out: report what is in use.
                    drop(stage);
                    let current = self.state.store.current();
                    Ok(current
                        .map(|s| describe(&s))
                        .ok_or(ReloadError::TimedOut(self.timeout.as_secs())))
                } else {
                    *stage = Stage::Abandoned;
                    abandoned.store(true, Ordering::Relaxed);
                    Ok(Err(ReloadError::TimedOut(self.timeout.as_secs())))
                }
            }
        };
        let outcome =
            joined.unwrap_or_else(|_| Err(ReloadError::Refused("the loader panicked".into())));
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
                    ReloadError::Unavailable(_) | ReloadError::TimedOut(_) => {
                        ReloadOutcome::Unavailable
                    }
                    ReloadError::Refused(_) | ReloadError::InProgress => ReloadOutcome::Refused,
                };
                metrics.reload(self.source_label(), outcome);
                tracing::warn!(%error, "snapshot not loaded; the snapshot in use (if any) keeps serving");
                Err(error)
            }
        }
    }
}

/// Reads, validates and compiles the origin's snapshot (blocking), stopping once `abandoned` is
/// set.
fn load_abandonable(
    origin: &SnapshotOrigin,
    rules: Arc<RuleSet>,
    limits: ReadLimits,
    abandoned: Arc<AtomicBool>,
) -> Result<CompiledSnapshot, ReloadError> {
    match origin {
        SnapshotOrigin::Embedded => reader::load_bytes(DEMO_SNAPSHOT.to_vec(), rules, &Silent)
            .map_err(|e| ReloadError::Refused(format!("embedded demo snapshot: {e}"))),
        SnapshotOrigin::Source(source) => source
            .load_abandonable(rules, limits, &Silent, abandoned)
            .map_err(classify),
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
    let loaded = describe(&snapshot);
    state
        .metrics
        .snapshot_loaded(&snapshot.meta, &snapshot.rules.version);
    let previous = state.store.swap(Arc::new(snapshot));
    drop(previous);
    loaded
}

/// What `snapshot` is, as a reload reports it.
fn describe(snapshot: &CompiledSnapshot) -> Loaded {
    Loaded {
        snapshot_id: snapshot.meta.snapshot_id.clone(),
        extracted_at: snapshot
            .meta
            .extracted_at
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        persons: snapshot.meta.persons,
        rule_set: snapshot.rules.version.clone(),
        load_ms: 0,
    }
}
