//! Telemetry: the Prometheus metrics registry and the tracing setup.

pub mod metrics;

use std::time::Duration;

use crate::snapshot::redis::{WatchObserver, WatchOutcome};
use kbi_audit::AuditObserver;
use metrics::{ReloadOutcome, ReloadSource};

/// The audit log reports its writes through [`AuditObserver`] (it knows no metrics); these are
/// the `kbi_audit_*` metrics it feeds.
impl AuditObserver for metrics::Metrics {
    fn audit_written(&self, records: u64, duration: Duration) {
        metrics::Metrics::audit_written(self, records, duration)
    }

    fn audit_waited(&self, wait: Duration) {
        metrics::Metrics::audit_waited(self, wait)
    }

    fn audit_failed(&self) {
        metrics::Metrics::audit_failed(self)
    }

    fn audit_missing_at_open(&self, records: u64) {
        metrics::Metrics::audit_missing_at_open(self, records)
    }
}

/// The Redis watcher reports each look at `current` through [`WatchObserver`] (it knows no
/// metrics); a loaded, refused or failed look is a `kbi_snapshot_reloads_total{source="redis"}`.
impl WatchObserver for metrics::Metrics {
    fn observed(&self, outcome: WatchOutcome<'_>) {
        let counted = match outcome {
            WatchOutcome::Unchanged => return,
            WatchOutcome::Loaded { .. } => ReloadOutcome::Ok,
            WatchOutcome::Refused => ReloadOutcome::Refused,
            WatchOutcome::Unavailable { .. } => ReloadOutcome::Unavailable,
        };
        self.reload(ReloadSource::Redis, counted);
    }
}
