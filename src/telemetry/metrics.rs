//! The Prometheus metrics of the service (`operations.md`, Observability).
//!
//! One [`Metrics`] is built at start-up and shared (`Arc<Metrics>`). Every label set that the
//! service can ever export is registered in [`Metrics::new`], and the handles are kept in arrays
//! indexed by small enums ([`Door`], [`Outcome`], [`ReasonCode`], [`ErrorCode`], …): recording on
//! the hot path is an array index and an atomic add, never a label lookup by string and never an
//! allocation (`benches/metrics.rs` and the unit tests below measure both).
//!
//! Labels are closed sets fixed here or by configuration (client ids). **An INSZ is never a
//! label**: nothing in this module takes one.
//!
//! Label values (documented for dashboards and alerts in `docs/operations.md`):
//! - `door`: `soap`, `rest`, `rest_batch`;
//! - `outcome` of a request: `ok`, `client_error`, `refused`, `server_error` ([`Outcome`]);
//! - `result` of a question: `OK`, `NOK`, `ERROR`; `reason`: a [`ReasonCode::code`] for `NOK`,
//!   `none` otherwise (the code of an `ERROR` is counted in `kbi_errors_total{code}`);
//! - `code`: the catalogue number as text (`30001` …);
//! - `source` of a snapshot load: `file`, `redis`; `outcome` of a load: `ok`, `refused`,
//!   `unavailable` ([`ReloadOutcome`]);
//! - `client`: a configured client id, or `unknown`;
//! - `purpose` of a question: a purpose of a loaded protocol file (`config/protocols/`, names
//!   `[a-z0-9-]`), or `none` when the question was refused before its form was read or its
//!   caller is bound to no purpose; a closed set fixed by configuration, registered at start and
//!   at each reload of the protocols;
//! - `outcome` of a configuration reload: `ok`, `refused`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use kbi_core::domain::{Advice, ErrorCode, ReasonCode, SnapshotMeta, Verdict};

/// Content type of [`Metrics::render`] (Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets in seconds, 50 µs to 1 s (`operations.md`). A question is answered in a few
/// µs, so the low buckets are where a healthy service lives; the high ones show queueing.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// The `client` label value for callers that are not in the configured set.
pub const UNKNOWN_CLIENT: &str = "unknown";

/// A failure to build the registry. Only a programming error (a duplicate or invalid metric
/// name) can cause it, never input.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The door a request came in through (`door` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `POST /soap/GeefAdviesInburgeringsplicht-01.00`.
    Soap,
    /// `GET /v1/integration-obligation/{insz}`.
    Rest,
    /// `POST /v1/integration-obligation:batch`.
    RestBatch,
}

impl Door {
    /// Every door, in label order.
    pub const ALL: [Door; 3] = [Door::Soap, Door::Rest, Door::RestBatch];

    /// The `door` label value.
    pub fn label(self) -> &'static str {
        match self {
            Door::Soap => "soap",
            Door::Rest => "rest",
            Door::RestBatch => "rest_batch",
        }
    }
}

/// How a request ended (`outcome` label of `kbi_requests_total`). Per-question errors inside an
/// answered batch do not change it: the request itself was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered: REST 200, or a SOAP reply with `Antwoorden` (some may hold Uitzonderingen).
    Ok,
    /// Refused for what the caller sent: REST 4xx other than identity and limits (a single
    /// question with 30001/30002/30003/30004 included), SOAP Faults, request-level 30011/30012.
    ClientError,
    /// Refused for who the caller is or how often it asks: 401, 403, 429, 30010, 30013.
    Refused,
    /// The service could not answer: 5xx, 30020 (no snapshot), 30021 (audit unavailable).
    ServerError,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::Refused,
        Outcome::ServerError,
    ];

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Refused => "refused",
            Outcome::ServerError => "server_error",
        }
    }

    /// The outcome of a REST response with HTTP status `status`.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            401 | 403 | 429 => Outcome::Refused,
            400..=499 => Outcome::ClientError,
            _ => Outcome::ServerError,
        }
    }

    /// The outcome of a request refused as a whole with catalogue error `code`: that of the HTTP
    /// status the catalogue gives the code, whatever the door (one classification, not two).
    pub fn for_error(code: ErrorCode) -> Outcome {
        Outcome::from_status(kbi_wire::json::http_status(code))
    }
}

/// Where a snapshot was loaded from (`source` label of `kbi_snapshot_reloads_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadSource {
    /// A file (or the embedded demo snapshot): start-up, `SIGHUP`, `POST /admin/snapshot/reload`.
    File,
    /// A version published in Redis.
    Redis,
}

impl ReloadSource {
    /// Every source, in label order.
    pub const ALL: [ReloadSource; 2] = [ReloadSource::File, ReloadSource::Redis];

    /// The `source` label value.
    pub fn label(self) -> &'static str {
        match self {
            ReloadSource::File => "file",
            ReloadSource::Redis => "redis",
        }
    }
}

/// How a snapshot load ended (`outcome` label of `kbi_snapshot_reloads_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Loaded, validated, compiled and swapped in.
    Ok,
    /// Read but refused (validation, checksum, rules): the previous snapshot keeps serving.
    Refused,
    /// The source could not be read (file missing, Redis unreachable): the previous snapshot keeps
    /// serving and the load is retried.
    Unavailable,
}

impl ReloadOutcome {
    /// Every outcome, in label order.
    pub const ALL: [ReloadOutcome; 3] = [
        ReloadOutcome::Ok,
        ReloadOutcome::Refused,
        ReloadOutcome::Unavailable,
    ];

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            ReloadOutcome::Ok => "ok",
            ReloadOutcome::Refused => "refused",
            ReloadOutcome::Unavailable => "unavailable",
        }
    }
}

const DOORS: usize = Door::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();
const REASONS: usize = ReasonCode::ALL.len();
const ERRORS: usize = ErrorCode::ALL.len();
const SOURCES: usize = ReloadSource::ALL.len();
const RELOAD_OUTCOMES: usize = ReloadOutcome::ALL.len();

/// "No snapshot loaded" in the extraction-time cell.
const NOT_LOADED: i64 = i64::MIN;
/// "No maximum age configured" in the maximum-age cell.
const NO_MAX_AGE: i64 = -1;

/// Every metric of the service, registered once, with a handle per label set.
pub struct Metrics {
    registry: Registry,
    requests: [[IntCounter; OUTCOMES]; DOORS],
    durations: [Histogram; DOORS],
    /// `kbi_questions_total{…,purpose="none"}`.
    questions_none: QuestionCounters,
    /// Per purpose of the loaded protocols; grows on reload, never shrinks (a counter that
    /// vanished would read as a reset). Few entries: found by a scan, no hashing.
    questions_by_purpose: arc_swap::ArcSwap<Vec<(Box<str>, QuestionCounters)>>,
    questions_vec: IntCounterVec,
    /// Serialises [`Metrics::register_purposes`].
    purposes_lock: Mutex<()>,
    config_reloads: [IntCounter; 2],
    errors: [IntCounter; ERRORS],
    snapshot_info: IntGaugeVec,
    snapshot_persons: IntGauge,
    reloads: [[IntCounter; RELOAD_OUTCOMES]; SOURCES],
    audit_records: IntCounter,
    audit_write_duration: Histogram,
    audit_failures: IntCounter,
    audit_records_per_sync: Histogram,
    audit_wait: Histogram,
    audit_missing_at_open: IntGauge,
    connections_shed: [IntCounter; 2],
    tls_handshake_failures: IntCounter,
    rate_limited: HashMap<Box<str>, IntCounter>,
    rate_limited_unknown: IntCounter,
    /// Shared with the scrape-time collector of age and readiness.
    clock: std::sync::Arc<SnapshotClock>,
    /// `kbi_soap_fast_path_total{outcome="taken"}` and `{outcome="deferred"}`.
    soap_fast_taken: IntCounter,
    soap_fast_deferred: IntCounter,
    /// Serialises swaps of `kbi_snapshot_info` (reset + set must not interleave).
    info_lock: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Builds and registers every metric. `clients` is the configured set of client ids: each
    /// gets its own `kbi_rate_limited_total{client}` series, every other caller counts as
    /// `unknown`, so the label stays bounded whatever callers send.
    pub fn new<S: AsRef<str>>(clients: &[S]) -> Result<Metrics, MetricsError> {
        let registry = Registry::new();

        let requests_vec = IntCounterVec::new(
            Opts::new(
                "kbi_requests_total",
                "Requests received, by door and by how they ended.",
            ),
            &["door", "outcome"],
        )?;
        registry.register(Box::new(requests_vec.clone()))?;
        let requests = Door::ALL.map(|door| {
            Outcome::ALL
                .map(|outcome| requests_vec.with_label_values(&[door.label(), outcome.label()]))
        });

        let durations_vec = HistogramVec::new(
            HistogramOpts::new(
                "kbi_request_duration_seconds",
                "Time from the request's arrival in the handler to its response, by door.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["door"],
        )?;
        registry.register(Box::new(durations_vec.clone()))?;
        let durations = Door::ALL.map(|door| durations_vec.with_label_values(&[door.label()]));

        let questions_vec = IntCounterVec::new(
            Opts::new(
                "kbi_questions_total",
                "Questions judged, by result (OK, NOK, ERROR), reason (NOK only, else none) and \
                 purpose of the caller's protocol (none: not read, or no protocol).",
            ),
            &["result", "reason", "purpose"],
        )?;
        registry.register(Box::new(questions_vec.clone()))?;
        let questions_none = QuestionCounters::new(&questions_vec, NO_PURPOSE);

        let config_reloads_vec = IntCounterVec::new(
            Opts::new(
                "kbi_config_reloads_total",
                "Reloads of the client registry and the protocol files (SIGHUP, \
                 POST /admin/snapshot/reload), by outcome: ok, or refused (the ones in use stay).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(config_reloads_vec.clone()))?;
        let config_reloads =
            ["ok", "refused"].map(|outcome| config_reloads_vec.with_label_values(&[outcome]));

        let errors_vec = IntCounterVec::new(
            Opts::new(
                "kbi_errors_total",
                "Catalogue errors returned, by code: one per refused question or request.",
            ),
            &["code"],
        )?;
        registry.register(Box::new(errors_vec.clone()))?;
        let errors = ErrorCode::ALL.map(|code| errors_vec.with_label_values(&[code.as_str()]));

        let snapshot_info = IntGaugeVec::new(
            Opts::new(
                "kbi_snapshot_info",
                "The snapshot in use (value 1) and the rule set it was compiled under.",
            ),
            &["snapshot_id", "rule_set"],
        )?;
        registry.register(Box::new(snapshot_info.clone()))?;
        let snapshot_persons =
            IntGauge::new("kbi_snapshot_persons", "Persons in the snapshot in use.")?;
        registry.register(Box::new(snapshot_persons.clone()))?;

        let reloads_vec = IntCounterVec::new(
            Opts::new(
                "kbi_snapshot_reloads_total",
                "Snapshot loads (start-up included), by source and outcome.",
            ),
            &["source", "outcome"],
        )?;
        registry.register(Box::new(reloads_vec.clone()))?;
        let reloads = ReloadSource::ALL.map(|source| {
            ReloadOutcome::ALL
                .map(|outcome| reloads_vec.with_label_values(&[source.label(), outcome.label()]))
        });

        let audit_records = IntCounter::new(
            "kbi_audit_records_total",
            "Records appended to the durable audit log.",
        )?;
        registry.register(Box::new(audit_records.clone()))?;
        let audit_write_duration = Histogram::with_opts(
            HistogramOpts::new(
                "kbi_audit_write_duration_seconds",
                "Time of one audit sync round (fdatasync of what the writer wrote meanwhile).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(audit_write_duration.clone()))?;
        let audit_failures = IntCounter::new(
            "kbi_audit_failures_total",
            "Audit writes that failed (the answer was then refused with 30021).",
        )?;
        registry.register(Box::new(audit_failures.clone()))?;
        let audit_records_per_sync = Histogram::with_opts(
            HistogramOpts::new(
                "kbi_audit_records_per_sync",
                "Records made durable by one audit sync round (group commit).",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
                65536.0,
            ]),
        )?;
        registry.register(Box::new(audit_records_per_sync.clone()))?;
        let audit_missing_at_open = IntGauge::new(
            "kbi_audit_records_missing_at_open",
            "Records the audit log's latest signed checkpoint vouched for that the log no longer \
             held when the service started (cut off while it was down; the numbers were not \
             reused). Anything but 0 is an incident.",
        )?;
        registry.register(Box::new(audit_missing_at_open.clone()))?;
        let shed_vec = IntCounterVec::new(
            Opts::new(
                "kbi_connections_shed_total",
                "Client connections closed by the service to keep room for other peers: \
                 reason=heaviest_peer (near the connection cap, the newest connection of the \
                 peer holding most), reason=head_timeout (no request within the head timeout \
                 shortened under pressure, or over the per-peer limit).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(shed_vec.clone()))?;
        let connections_shed =
            ["heaviest_peer", "head_timeout"].map(|reason| shed_vec.with_label_values(&[reason]));
        let audit_wait = Histogram::with_opts(
            HistogramOpts::new(
                "kbi_audit_wait_seconds",
                "Time an audit append waits, from its hand-over to the writer until its records \
                 are durable (one observation per append; a batch counts once).",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002,
                0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        registry.register(Box::new(audit_wait.clone()))?;

        let tls_handshake_failures = IntCounter::new(
            "kbi_tls_handshake_failures_total",
            "TLS handshakes that failed (no, unknown or invalid client certificate, protocol).",
        )?;
        registry.register(Box::new(tls_handshake_failures.clone()))?;

        let rate_limited_vec = IntCounterVec::new(
            Opts::new(
                "kbi_rate_limited_total",
                "Requests refused by the rate limit (30013 / 429), by configured client id.",
            ),
            &["client"],
        )?;
        registry.register(Box::new(rate_limited_vec.clone()))?;
        let rate_limited_unknown = rate_limited_vec.with_label_values(&[UNKNOWN_CLIENT]);
        let rate_limited = clients
            .iter()
            .map(|client| {
                let client = client.as_ref();
                (
                    Box::from(client),
                    rate_limited_vec.with_label_values(&[client]),
                )
            })
            .collect();

        let clock = std::sync::Arc::new(SnapshotClock::new()?);
        registry.register(Box::new(ClockCollector(clock.clone())))?;

        let fast_path_vec = IntCounterVec::new(
            Opts::new(
                "kbi_soap_fast_path_total",
                "SOAP bodies read by the fast reader (taken) or handed to the hardened parser \
                 (deferred).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(fast_path_vec.clone()))?;
        let soap_fast_taken = fast_path_vec.with_label_values(&["taken"]);
        let soap_fast_deferred = fast_path_vec.with_label_values(&["deferred"]);

        // Process metrics exist only where the crate can read /proc (Linux).
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Metrics {
            registry,
            soap_fast_taken,
            soap_fast_deferred,
            requests,
            durations,
            questions_none,
            questions_by_purpose: arc_swap::ArcSwap::from_pointee(Vec::new()),
            questions_vec,
            purposes_lock: Mutex::new(()),
            config_reloads,
            errors,
            snapshot_info,
            snapshot_persons,
            reloads,
            audit_records,
            audit_write_duration,
            audit_failures,
            audit_records_per_sync,
            audit_wait,
            audit_missing_at_open,
            connections_shed,
            tls_handshake_failures,
            rate_limited,
            rate_limited_unknown,
            clock,
            info_lock: Mutex::new(()),
        })
    }

    /// The underlying registry, for collectors registered elsewhere.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    // ---- the hot path -------------------------------------------------------------------------

    /// Counts one judged question without a purpose: `kbi_questions_total{result,reason,
    /// purpose="none"}`, and for a refused
    /// question also `kbi_errors_total{code}`. Call once per question, in every door.
    #[inline]
    pub fn record_question(&self, outcome: &Result<Advice, ErrorCode>) {
        self.record_in(&self.questions_none, outcome);
    }

    #[inline]
    fn record_in(&self, counters: &QuestionCounters, outcome: &Result<Advice, ErrorCode>) {
        match outcome {
            Ok(advice) => match advice.reason {
                Some(reason) if !advice.is_ok() => counters.nok[reason_index(reason)].inc(),
                _ => counters.ok.inc(),
            },
            Err(code) => {
                counters.error.inc();
                self.errors[error_index(*code)].inc();
            }
        }
    }

    /// Counts the judged questions of one request ([`Metrics::record_question`] for each), each
    /// under its purpose.
    #[inline]
    pub fn record_questions(&self, verdicts: &[Verdict]) {
        let purposes = self.questions_by_purpose.load();
        // The questions of a request nearly always share their purpose (the same `Arc`): it is
        // looked up by name once, then recognised by its address.
        let mut last: Option<(*const u8, &QuestionCounters)> = None;
        for verdict in verdicts {
            let counters = match &verdict.purpose {
                None => &self.questions_none,
                Some(purpose) => {
                    let address = purpose.as_ptr();
                    match last {
                        Some((seen, counters)) if seen == address => counters,
                        _ => {
                            let counters = purposes
                                .iter()
                                .find(|(name, _)| **name == **purpose)
                                .map_or(&self.questions_none, |(_, counters)| counters);
                            last = Some((address, counters));
                            counters
                        }
                    }
                }
            };
            self.record_in(counters, &verdict.outcome);
        }
    }

    /// Registers the `purpose` label values of the loaded protocols (start-up and each reload
    /// of the protocols); purposes already registered keep their counters.
    pub fn register_purposes(&self, purposes: &[std::sync::Arc<str>]) {
        let _guard = self
            .purposes_lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let current = self.questions_by_purpose.load_full();
        let mut next: Vec<(Box<str>, QuestionCounters)> = current.as_ref().clone();
        for purpose in purposes {
            if &**purpose != NO_PURPOSE && !next.iter().any(|(name, _)| **name == **purpose) {
                next.push((
                    Box::from(&**purpose),
                    QuestionCounters::new(&self.questions_vec, purpose),
                ));
            }
        }
        self.questions_by_purpose.store(std::sync::Arc::new(next));
    }

    /// Counts a reload of the clients and protocols: `kbi_config_reloads_total{outcome}`.
    pub fn config_reload(&self, ok: bool) {
        self.config_reloads[usize::from(!ok)].inc();
    }

    /// Counts a catalogue error that refused a whole request (no question was judged): SOAP
    /// request-level Uitzonderingen, REST refusals of a batch (30011, 30020, 30021, …).
    #[inline]
    pub fn record_request_error(&self, code: ErrorCode) {
        self.errors[error_index(code)].inc();
    }

    /// Counts one request and its latency: `kbi_requests_total{door,outcome}` and
    /// `kbi_request_duration_seconds{door}`.
    #[inline]
    /// A SOAP body was read by the fast reader (`taken`) or the hardened parser (`deferred`).
    pub fn record_soap_road(&self, road: kbi_wire::soap::Road) {
        match road {
            kbi_wire::soap::Road::Fast => self.soap_fast_taken.inc(),
            kbi_wire::soap::Road::Hardened => self.soap_fast_deferred.inc(),
        }
    }

    pub fn observe_request(&self, door: Door, outcome: Outcome, duration: Duration) {
        self.requests[door as usize][outcome as usize].inc();
        self.durations[door as usize].observe(duration.as_secs_f64());
    }

    // ---- snapshots ----------------------------------------------------------------------------

    /// A snapshot was swapped in: sets `kbi_snapshot_info{snapshot_id,rule_set}` to 1 for it
    /// (the previous one's series is removed), `kbi_snapshot_persons`, and the extraction time
    /// from which `kbi_snapshot_age_seconds` is computed at each scrape. Does not count a reload:
    /// call [`Metrics::reload`] for that.
    pub fn snapshot_loaded(&self, meta: &SnapshotMeta, rule_set: &str) {
        let _guard = self
            .info_lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        self.snapshot_info.reset();
        self.snapshot_info
            .with_label_values(&[meta.snapshot_id.as_str(), rule_set])
            .set(1);
        self.snapshot_persons
            .set(i64::try_from(meta.persons).unwrap_or(i64::MAX));
        self.clock.set_extracted_at(Some(meta.extracted_at));
    }

    /// Counts one snapshot load attempt: `kbi_snapshot_reloads_total{source,outcome}`. The file
    /// source calls it at start-up and on every reload; the Redis source on every version it
    /// tries (`metrics.reload(ReloadSource::Redis, ReloadOutcome::Refused)` for a bad checksum,
    /// `Unavailable` when Redis cannot be reached).
    pub fn reload(&self, source: ReloadSource, outcome: ReloadOutcome) {
        self.reloads[source as usize][outcome as usize].inc();
    }

    /// The configured maximum snapshot age (`None`: no maximum), exported as
    /// `kbi_snapshot_max_age_seconds` so the alert compares against the service's own setting,
    /// and used for `kbi_ready`.
    pub fn set_snapshot_max_age(&self, max_age: Option<Duration>) {
        self.clock.set_max_age(max_age);
    }

    // ---- audit, TLS, limits (recorded by the trust/audit layer) -------------------------------

    /// One audit sync round made `records` durable: `kbi_audit_records_total += records`,
    /// `kbi_audit_records_per_sync` observes `records`, `kbi_audit_write_duration_seconds`
    /// observes the sync's `duration`.
    pub fn audit_written(&self, records: u64, duration: Duration) {
        self.audit_records.inc_by(records);
        self.audit_records_per_sync.observe(records as f64);
        self.audit_write_duration.observe(duration.as_secs_f64());
    }

    /// One audit append was answered after `wait` (`kbi_audit_wait_seconds`).
    pub fn audit_waited(&self, wait: Duration) {
        self.audit_wait.observe(wait.as_secs_f64());
    }

    /// One audit write failed: `kbi_audit_failures_total += 1`.
    pub fn audit_failed(&self) {
        self.audit_failures.inc();
    }

    /// At open, the audit log held `records` fewer records than its latest checkpoint vouched
    /// for (`kbi_audit_records_missing_at_open`).
    pub fn audit_missing_at_open(&self, records: u64) {
        self.audit_missing_at_open
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// The service closed a client connection: `kbi_connections_shed_total{reason}`.
    pub fn connection_shed(&self, reason: crate::service::guard::ShedReason) {
        self.connections_shed[reason as usize].inc();
    }

    /// One TLS handshake failed: `kbi_tls_handshake_failures_total += 1`.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// One request was refused by the rate limit: `kbi_rate_limited_total{client}`; a client id
    /// that is not configured counts as `unknown`.
    pub fn rate_limited(&self, client: &str) {
        self.rate_limited
            .get(client)
            .unwrap_or(&self.rate_limited_unknown)
            .inc();
    }

    // ---- readiness and exposition -------------------------------------------------------------

    /// Whether the service is ready by the rule of `operations.md`: a snapshot is loaded and it is
    /// not older than the configured maximum age. `kbi_ready` exports the same value at each
    /// scrape.
    pub fn is_ready(&self) -> bool {
        self.clock.is_ready(Utc::now())
    }

    /// The text exposition of every metric (`GET /metrics`, content type [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut text = String::with_capacity(16 * 1024);
        // Encoding into a String fails only on a broken metric family, which `gather` never
        // returns; an empty exposition is then better than a panic in the scrape handler.
        if TextEncoder::new()
            .encode_utf8(&families, &mut text)
            .is_err()
        {
            text.clear();
        }
        text
    }

    /// The names of the metric families registered here, as `render` exports them (with every
    /// label set of `kbi_snapshot_info` only once a snapshot is loaded).
    pub fn family_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .registry
            .gather()
            .iter()
            .map(|family| family.name().to_string())
            .collect();
        names.sort();
        names
    }
}

impl Encoder for Metrics {
    fn encode<W: std::io::Write>(
        &self,
        families: &[MetricFamily],
        writer: &mut W,
    ) -> prometheus::Result<()> {
        TextEncoder::new().encode(families, writer)
    }

    fn format_type(&self) -> &str {
        CONTENT_TYPE
    }
}

/// The `purpose` label of a question without one.
const NO_PURPOSE: &str = "none";

/// The `kbi_questions_total` series of one purpose.
#[derive(Clone)]
struct QuestionCounters {
    ok: IntCounter,
    error: IntCounter,
    nok: [IntCounter; REASONS],
}

impl QuestionCounters {
    fn new(vec: &IntCounterVec, purpose: &str) -> QuestionCounters {
        QuestionCounters {
            ok: vec.with_label_values(&["OK", "none", purpose]),
            error: vec.with_label_values(&["ERROR", "none", purpose]),
            nok: ReasonCode::ALL
                .map(|reason| vec.with_label_values(&["NOK", reason.code(), purpose])),
        }
    }
}

fn reason_index(reason: ReasonCode) -> usize {
    reason as usize
}

fn error_index(code: ErrorCode) -> usize {
    // `ErrorCode` has explicit numbers but no explicit discriminants: its declaration order is
    // the order of `ErrorCode::ALL` (checked by a unit test).
    code as usize
}

/// The loaded snapshot's extraction time and the configured maximum age, read at scrape time.
struct SnapshotClock {
    /// Unix milliseconds of `extracted_at`, or [`NOT_LOADED`].
    extracted_at_ms: AtomicI64,
    /// Milliseconds, or [`NO_MAX_AGE`].
    max_age_ms: AtomicI64,
    age: Gauge,
    max_age: Gauge,
    ready: IntGauge,
}

impl SnapshotClock {
    fn new() -> Result<SnapshotClock, prometheus::Error> {
        Ok(SnapshotClock {
            extracted_at_ms: AtomicI64::new(NOT_LOADED),
            max_age_ms: AtomicI64::new(NO_MAX_AGE),
            age: Gauge::new(
                "kbi_snapshot_age_seconds",
                "Seconds since the extraction of the snapshot in use (computed at scrape time).",
            )?,
            max_age: Gauge::new(
                "kbi_snapshot_max_age_seconds",
                "Configured maximum snapshot age; older makes the replica not ready.",
            )?,
            ready: IntGauge::new(
                "kbi_ready",
                "1 when a snapshot is loaded and not older than the maximum age, else 0.",
            )?,
        })
    }

    fn set_extracted_at(&self, at: Option<DateTime<Utc>>) {
        let ms = at.map_or(NOT_LOADED, |at| at.timestamp_millis());
        self.extracted_at_ms.store(ms, Ordering::Release);
    }

    fn set_max_age(&self, max_age: Option<Duration>) {
        let ms = max_age.map_or(NO_MAX_AGE, |d| {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        });
        self.max_age_ms.store(ms, Ordering::Release);
    }

    /// Age in milliseconds at `now`, when a snapshot is loaded.
    fn age_ms(&self, now: DateTime<Utc>) -> Option<i64> {
        let at = self.extracted_at_ms.load(Ordering::Acquire);
        (at != NOT_LOADED).then(|| now.timestamp_millis().saturating_sub(at))
    }

    fn is_ready(&self, now: DateTime<Utc>) -> bool {
        let max = self.max_age_ms.load(Ordering::Acquire);
        self.age_ms(now)
            .is_some_and(|age| max == NO_MAX_AGE || age <= max)
    }
}

/// Exports age, maximum age and readiness with the values of the moment of the scrape.
struct ClockCollector(std::sync::Arc<SnapshotClock>);

impl Collector for ClockCollector {
    fn desc(&self) -> Vec<&Desc> {
        let clock = &self.0;
        let mut descs = clock.age.desc();
        descs.extend(clock.max_age.desc());
        descs.extend(clock.ready.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let clock = &self.0;
        let now = Utc::now();
        let mut families = Vec::with_capacity(3);
        // No snapshot, no age: an absent series rather than a made-up number (kbi_ready says 0).
        if let Some(age) = clock.age_ms(now) {
            clock.age.set(age as f64 / 1000.0);
            families.extend(clock.age.collect());
        }
        let max = clock.max_age_ms.load(Ordering::Acquire);
        if max != NO_MAX_AGE {
            clock.max_age.set(max as f64 / 1000.0);
            families.extend(clock.max_age.collect());
        }
        clock.ready.set(i64::from(clock.is_ready(now)));
        families.extend(clock.ready.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use kbi_core::domain::Insz;

    fn metrics() -> Metrics {
        Metrics::new(&["zorgkas-a", "zorgkas-b"]).expect("metrics register")
    }

    fn advice(subject: bool, compliant: bool, reason: Option<ReasonCode>) -> Advice {
        Advice {
            insz: Insz::parse("90011510185").expect("demo INSZ"),
            reference_date: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            subject,
            compliant,
            reason,
            found: true,
        }
    }

    /// The value of the one sample whose line starts with `series` (name and labels as text).
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
            .parse()
            .expect("sample value")
    }

    #[test]
    fn enum_order_matches_the_label_arrays() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(error_index(code), i, "{}", code.as_str());
        }
        for (i, reason) in ReasonCode::ALL.into_iter().enumerate() {
            assert_eq!(reason_index(reason), i, "{}", reason.code());
        }
        for (i, door) in Door::ALL.into_iter().enumerate() {
            assert_eq!(door as usize, i);
        }
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, i);
        }
    }

    #[test]
    fn every_label_set_is_exported_before_any_traffic() {
        let text = metrics().render();
        for door in Door::ALL {
            for outcome in Outcome::ALL {
                let series = format!(
                    "kbi_requests_total{{door=\"{}\",outcome=\"{}\"}}",
                    door.label(),
                    outcome.label()
                );
                assert_eq!(sample(&text, &series), 0.0);
            }
        }
        for reason in ReasonCode::ALL {
            let series = format!(
                "kbi_questions_total{{purpose=\"none\",reason=\"{}\",result=\"NOK\"}}",
                reason.code()
            );
            assert_eq!(sample(&text, &series), 0.0);
        }
        for code in ErrorCode::ALL {
            let series = format!("kbi_errors_total{{code=\"{}\"}}", code.as_str());
            assert_eq!(sample(&text, &series), 0.0);
        }
        assert_eq!(
            sample(&text, "kbi_rate_limited_total{client=\"zorgkas-a\"}"),
            0.0
        );
        assert_eq!(
            sample(&text, "kbi_rate_limited_total{client=\"unknown\"}"),
            0.0
        );
        assert_eq!(sample(&text, "kbi_ready"), 0.0);
        assert!(
            !text.contains("kbi_snapshot_age_seconds "),
            "no age without snapshot"
        );
    }

    #[test]
    fn questions_are_counted_by_result_and_reason_and_errors_by_code() {
        let m = metrics();
        m.record_question(&Ok(advice(false, true, None)));
        m.record_question(&Ok(advice(true, true, None)));
        m.record_question(&Ok(advice(true, false, Some(ReasonCode::GeenContract))));
        m.record_question(&Ok(advice(true, false, Some(ReasonCode::GeenContract))));
        m.record_question(&Ok(advice(true, false, Some(ReasonCode::NietAangemeld))));
        m.record_question(&Err(ErrorCode::InvalidInsz));
        m.record_request_error(ErrorCode::TooManyQuestions);
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                "kbi_questions_total{purpose=\"none\",reason=\"none\",result=\"OK\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_questions_total{purpose=\"none\",reason=\"GEEN_CONTRACT\",result=\"NOK\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_questions_total{purpose=\"none\",reason=\"NIET_AANGEMELD\",result=\"NOK\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_questions_total{purpose=\"none\",reason=\"none\",result=\"ERROR\"}"
            ),
            1.0
        );
        assert_eq!(sample(&text, "kbi_errors_total{code=\"30001\"}"), 1.0);
        assert_eq!(sample(&text, "kbi_errors_total{code=\"30011\"}"), 1.0);
        assert_eq!(sample(&text, "kbi_errors_total{code=\"30002\"}"), 0.0);
    }

    #[test]
    fn requests_are_counted_and_timed_per_door() {
        let m = metrics();
        m.observe_request(Door::Rest, Outcome::Ok, Duration::from_micros(80));
        m.observe_request(Door::Rest, Outcome::ClientError, Duration::from_millis(2));
        m.observe_request(Door::RestBatch, Outcome::Ok, Duration::from_secs(3));
        let text = m.render();
        assert_eq!(
            sample(&text, "kbi_requests_total{door=\"rest\",outcome=\"ok\"}"),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_requests_total{door=\"rest\",outcome=\"client_error\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_request_duration_seconds_bucket{door=\"rest\",le=\"0.0001\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_request_duration_seconds_bucket{door=\"rest\",le=\"0.0025\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_request_duration_seconds_bucket{door=\"rest_batch\",le=\"1\"}"
            ),
            0.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_request_duration_seconds_count{door=\"rest_batch\"}"
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_request_duration_seconds_bucket{door=\"soap\",le=\"0.00005\"}"
            ),
            0.0
        );
    }

    #[test]
    fn outcomes_follow_status_and_code() {
        assert_eq!(Outcome::from_status(200), Outcome::Ok);
        assert_eq!(Outcome::from_status(400), Outcome::ClientError);
        assert_eq!(Outcome::from_status(413), Outcome::ClientError);
        assert_eq!(Outcome::from_status(403), Outcome::Refused);
        assert_eq!(Outcome::from_status(429), Outcome::Refused);
        assert_eq!(Outcome::from_status(503), Outcome::ServerError);
        assert_eq!(
            Outcome::for_error(ErrorCode::TooManyQuestions),
            Outcome::ClientError
        );
        assert_eq!(Outcome::for_error(ErrorCode::RateLimited), Outcome::Refused);
        assert_eq!(
            Outcome::for_error(ErrorCode::AuditUnavailable),
            Outcome::ServerError
        );
        // Every code, as the metrics have always classified them.
        let expected = |code| match code {
            // 30005 is a 403 like 30010: refused for who asks (under which protocol).
            ErrorCode::NotAuthorised | ErrorCode::RateLimited | ErrorCode::OutsideProtocol => {
                Outcome::Refused
            }
            ErrorCode::NotReady | ErrorCode::AuditUnavailable => Outcome::ServerError,
            _ => Outcome::ClientError,
        };
        for code in ErrorCode::ALL {
            assert_eq!(Outcome::for_error(code), expected(code), "{code:?}");
        }
    }

    #[test]
    fn snapshot_swap_replaces_the_info_series() {
        let m = metrics();
        let at = Utc
            .with_ymd_and_hms(2026, 11, 1, 2, 0, 0)
            .single()
            .expect("time");
        let meta = |id: &str, persons| SnapshotMeta {
            snapshot_id: id.to_string(),
            extracted_at: at,
            persons,
            facts: Default::default(),
            sources: None,
        };
        m.snapshot_loaded(&meta("s-1", 300), "rules-a");
        m.reload(ReloadSource::File, ReloadOutcome::Ok);
        m.snapshot_loaded(&meta("s-2", 400), "rules-a");
        m.reload(ReloadSource::File, ReloadOutcome::Ok);
        m.reload(ReloadSource::Redis, ReloadOutcome::Refused);
        let text = m.render();
        assert!(
            !text.contains("s-1"),
            "old snapshot still exported:\n{text}"
        );
        assert_eq!(
            sample(
                &text,
                "kbi_snapshot_info{rule_set=\"rules-a\",snapshot_id=\"s-2\"}"
            ),
            1.0
        );
        assert_eq!(sample(&text, "kbi_snapshot_persons"), 400.0);
        assert_eq!(
            sample(
                &text,
                "kbi_snapshot_reloads_total{outcome=\"ok\",source=\"file\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(
                &text,
                "kbi_snapshot_reloads_total{outcome=\"refused\",source=\"redis\"}"
            ),
            1.0
        );
        let age = sample(&text, "kbi_snapshot_age_seconds");
        let expected = (Utc::now() - at).num_milliseconds() as f64 / 1000.0;
        // Both are taken within this test; a difference of a minute would be a wrong formula.
        assert!(
            (age - expected).abs() < 60.0,
            "age {age}, expected about {expected}"
        );
    }

    #[test]
    fn readiness_needs_a_snapshot_within_the_maximum_age() {
        let m = metrics();
        assert!(!m.is_ready());
        let meta = |at| SnapshotMeta {
            snapshot_id: "s".to_string(),
            extracted_at: at,
            persons: 1,
            facts: Default::default(),
            sources: None,
        };
        m.snapshot_loaded(&meta(Utc::now()), "r");
        assert!(m.is_ready(), "no maximum age configured");
        m.set_snapshot_max_age(Some(Duration::from_secs(3600)));
        assert!(m.is_ready());
        assert_eq!(sample(&m.render(), "kbi_ready"), 1.0);
        assert_eq!(sample(&m.render(), "kbi_snapshot_max_age_seconds"), 3600.0);
        m.snapshot_loaded(&meta(Utc::now() - chrono::Duration::hours(2)), "r");
        assert!(!m.is_ready());
        assert_eq!(sample(&m.render(), "kbi_ready"), 0.0);
    }

    #[test]
    fn rate_limits_count_configured_clients_and_unknown_ones() {
        let m = metrics();
        m.rate_limited("zorgkas-b");
        m.rate_limited("somebody-else");
        m.rate_limited("and-another");
        let text = m.render();
        assert_eq!(
            sample(&text, "kbi_rate_limited_total{client=\"zorgkas-b\"}"),
            1.0
        );
        assert_eq!(
            sample(&text, "kbi_rate_limited_total{client=\"unknown\"}"),
            2.0
        );
        assert!(!text.contains("somebody-else"));
    }

    #[test]
    fn audit_and_tls_counters() {
        let m = metrics();
        m.audit_written(3, Duration::from_micros(300));
        m.audit_failed();
        m.tls_handshake_failed();
        let text = m.render();
        assert_eq!(sample(&text, "kbi_audit_records_total"), 3.0);
        assert_eq!(sample(&text, "kbi_audit_write_duration_seconds_count"), 1.0);
        assert_eq!(sample(&text, "kbi_audit_records_per_sync_sum"), 3.0);
        m.audit_waited(Duration::from_micros(400));
        let text = m.render();
        assert_eq!(sample(&text, "kbi_audit_wait_seconds_count"), 1.0);
        assert_eq!(
            sample(&text, "kbi_audit_wait_seconds_bucket{le=\"0.0005\"}"),
            1.0
        );
        assert_eq!(
            sample(&text, "kbi_audit_wait_seconds_bucket{le=\"0.0003\"}"),
            0.0
        );
        assert_eq!(sample(&text, "kbi_audit_failures_total"), 1.0);
        assert_eq!(sample(&text, "kbi_tls_handshake_failures_total"), 1.0);
    }

    /// Counts heap allocations of this thread only, so tests running in parallel do not disturb
    /// the count.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            pub static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
        }

        // SAFETY: delegates every call to the system allocator unchanged; only counts.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
                System.alloc(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                System.dealloc(ptr, layout)
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
                System.realloc(ptr, layout, new_size)
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;

        pub fn count() -> u64 {
            ALLOCATIONS.with(Cell::get)
        }
    }

    #[test]
    fn recording_a_question_does_not_allocate() {
        let m = metrics();
        let answers = [
            Ok(advice(false, true, None)),
            Ok(advice(true, false, Some(ReasonCode::OnvoldoendeAanwezig))),
            Err(ErrorCode::SnapshotTooOld),
        ];
        // Warm up: the first observation may touch lazily initialised state.
        m.record_question(&answers[0]);
        m.observe_request(Door::Rest, Outcome::Ok, Duration::from_micros(10));
        let before = counting::count();
        for i in 0..30_000 {
            m.record_question(&answers[i % answers.len()]);
            m.observe_request(
                Door::ALL[i % 3],
                Outcome::ALL[i % 4],
                Duration::from_micros(70),
            );
            m.record_request_error(ErrorCode::NotReady);
        }
        let after = counting::count();
        assert_eq!(after - before, 0, "allocations while recording");
        // The counters did move: the loop was not optimised away.
        let text = m.render();
        assert_eq!(sample(&text, "kbi_errors_total{code=\"30020\"}"), 30_000.0);
    }
}
