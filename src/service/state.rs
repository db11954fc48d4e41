//! What every request handler shares: the snapshot in use (swapped atomically), the limits, the
//! metrics and the server-reference generator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use super::policy::{Policy, PolicySources};
use crate::telemetry::metrics::Metrics;
use kbi_audit::AuditLog;
use kbi_core::domain::CompiledSnapshot;
use kbi_wire::soap::XmlLimits;

/// The snapshot in use. A request takes its own reference (`current`) and answers every one of
/// its questions from it, so a swap never changes the snapshot under a request in flight; the
/// previous snapshot is freed when the last request holding it finishes.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwapOption<CompiledSnapshot>,
}

impl SnapshotStore {
    /// The snapshot in use, or `None` before the first successful load.
    pub fn current(&self) -> Option<Arc<CompiledSnapshot>> {
        self.current.load_full()
    }

    /// Puts `snapshot` in use and returns the previous one (so the caller decides where it is
    /// dropped: freeing a large index belongs on a blocking thread).
    pub fn swap(&self, snapshot: Arc<CompiledSnapshot>) -> Option<Arc<CompiledSnapshot>> {
        self.current.swap(Some(snapshot))
    }
}

/// Unique server references (`Referte`): a random instance prefix, so replicas never collide,
/// and a counter. At most 33 characters, within MAGDA's 36.
#[derive(Debug)]
pub struct References {
    instance: String,
    next: AtomicU64,
}

impl Default for References {
    fn default() -> Self {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        References {
            instance: uuid[..16].to_string(),
            next: AtomicU64::new(1),
        }
    }
}

impl References {
    /// The next reference, e.g. `5f0c2d9e8a7b6c51-000000000000042`.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:016x}", self.instance)
    }
}

/// Request-handling limits from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub body: super::body::BodyLimits,
    pub rest_batch_questions: usize,
    pub xml: XmlLimits,
}

/// Shared by the handlers of both listeners.
pub struct AppState {
    pub store: SnapshotStore,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub references: References,
    pub service_identificatie: String,
    /// Who may call, under which protocol, and the per-client token buckets; swapped as one
    /// on reload. In an `Arc` so that each thread can keep an `arc_swap::Cache` of it
    /// (`caller::current_policy`).
    pub policy: Arc<ArcSwap<Policy>>,
    /// Where the policy is read again from on reload.
    pub policy_sources: PolicySources,
    /// Development profile: plain HTTP, callers identified by Afzender / `X-Client-Id`.
    pub development: bool,
    /// The audit log; `None` only when disabled in the development profile.
    pub audit: Option<AuditLog>,
    /// Parsing and judging, off the network threads, within the request time budget.
    pub compute: super::guard::Compute,
    /// `server.public_url` without a trailing `/`, when set (the WSDL's address).
    pub public_url: Option<String>,
    /// Peers whose `Forwarded` / `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The SOAP replies' `Bron` of the snapshot in use, encoded once per snapshot.
    pub soap_source: super::soap_door::SourceCache,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_unique_and_fit_magda() {
        let references = References::default();
        let a = references.next();
        let b = references.next();
        assert_ne!(a, b);
        assert!(a.len() <= kbi_core::domain::magda::MAX_REFERTE, "{a}");
        assert_ne!(References::default().next(), a, "instances differ");
    }
}
