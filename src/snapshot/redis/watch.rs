//! Following `current` from a serving replica: subscribe to the notification channel, poll in
//! case a notification was missed, load a new version beside the old one and hand it over to be
//! swapped in. Redis faults never take the served snapshot away.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use sha2::{Digest, Sha256};

use super::load::{load_version, read_current, LoadedVersion};
use super::{RedisSnapshotError, RedisTarget};
use kbi_core::domain::RuleSet;
use kbi_core::io::Silent;
use kbi_core::snapshot::reader::ReadLimits;

/// How a replica follows Redis.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often `current` is read even without a notification (a notification can be lost while
    /// the subscription reconnects).
    pub poll_interval: Duration,
    /// First wait after a failure; doubled after each failure in a row.
    pub retry_initial: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Bounds on reading one version (the service's `[snapshot]` settings).
    pub limits: ReadLimits,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll_interval: Duration::from_secs(10),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            limits: ReadLimits::default(),
        }
    }
}

/// What one look at `current` came to, told to a [`WatchObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOutcome<'a> {
    /// Redis answered and `current` is the version already in use (or refused last).
    Unchanged,
    /// A new version was loaded and handed over.
    Loaded {
        /// Its number.
        version: &'a str,
    },
    /// A version was refused (corrupt chunk, invalid content): the previous snapshot keeps
    /// serving.
    Refused,
    /// The look failed (retried with backoff); `reachable` tells whether Redis answered at all
    /// (it may have answered that nothing is published).
    Unavailable {
        /// Whether the contact with Redis itself succeeded.
        reachable: bool,
    },
}

/// Who hears what the watcher does: the service's metrics (`telemetry`), a test's counters. The
/// watcher names no concrete recorder, as the audit log reports through `AuditObserver`. Called
/// after every look at `current`.
pub trait WatchObserver: Send + Sync {
    fn observed(&self, outcome: WatchOutcome<'_>);
}

/// What one look at `current` led to.
enum WatchEvent {
    /// Nothing new.
    Unchanged,
    /// A new version was loaded and handed over (its identity: number and meta digest).
    Loaded(String),
    /// A version was refused; it is not tried again until `current` changes (its identity).
    Refused(String),
}

/// Follows `current` under `target` for ever (abort the task to stop): loads the current version
/// at once (retrying with backoff while Redis is unreachable or nothing is published), then every
/// new one, and calls `install` with each loaded version (on a blocking thread: `install` may
/// drop the previous snapshot). A refused version is logged and told to `observer`, and the
/// previous snapshot keeps serving.
pub async fn watch_redis<F>(
    target: RedisTarget,
    rules: Arc<RuleSet>,
    options: WatchOptions,
    observer: Arc<dyn WatchObserver>,
    install: F,
) where
    F: Fn(LoadedVersion) + Send + Sync + 'static,
{
    let install = Arc::new(install);
    let mut known: Option<String> = None;
    let mut refused: Option<String> = None;
    let mut backoff = options.retry_initial;
    let mut failing = false;
    let mut subscription: Option<Subscription> = None;
    loop {
        if subscription.is_none() {
            subscription = subscribe(&target).await;
        }
        let outcome = {
            let target = target.clone();
            let rules = rules.clone();
            let known = known.clone();
            let refused = refused.clone();
            let install = install.clone();
            let limits = options.limits;
            tokio::task::spawn_blocking(move || {
                look(
                    &target,
                    rules,
                    limits,
                    known.as_deref(),
                    refused.as_deref(),
                    &*install,
                )
            })
            .await
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(join) => {
                // A panic in the loader is a bug; keep serving what we have and try again later.
                tracing::error!(error = %join, "Redis snapshot watcher: load task failed");
                Err(RedisSnapshotError::Abandoned {
                    version: known.clone().unwrap_or_default(),
                    problem: "the load task failed".into(),
                })
            }
        };
        match outcome {
            Ok(event) => {
                if failing {
                    tracing::info!(redis = %target, "Redis reachable again");
                }
                failing = false;
                backoff = options.retry_initial;
                match event {
                    WatchEvent::Unchanged => observer.observed(WatchOutcome::Unchanged),
                    WatchEvent::Loaded(identity) => {
                        let number = identity.split('/').next().unwrap_or_default();
                        observer.observed(WatchOutcome::Loaded { version: number });
                        known = Some(identity);
                        refused = None;
                    }
                    WatchEvent::Refused(identity) => {
                        observer.observed(WatchOutcome::Refused);
                        refused = Some(identity);
                    }
                }
            }
            Err(error) => {
                observer.observed(WatchOutcome::Unavailable {
                    reachable: !matches!(error, RedisSnapshotError::Unavailable { .. }),
                });
                // Said once per outage, not at every retry; the served snapshot stays.
                if !failing {
                    tracing::warn!(redis = %target, %error,
                        "cannot read the current snapshot version from Redis; \
                         keeping the snapshot in use and retrying with backoff");
                }
                failing = true;
                subscription = None;
            }
        }
        let wait = if failing {
            let wait = backoff;
            backoff = (backoff * 2).min(options.retry_max);
            wait
        } else {
            options.poll_interval
        };
        match subscription.as_mut() {
            Some(sub) => {
                tokio::select! {
                    message = sub.stream.next() => {
                        if message.is_none() {
                            tracing::warn!(redis = %target,
                                "lost the Redis notification channel; polling until it is back");
                            subscription = None;
                        }
                    }
                    () = tokio::time::sleep(wait) => {}
                }
            }
            None => tokio::time::sleep(wait).await,
        }
    }
}

/// One look at `current`: load it if it is new (and not the version refused last).
///
/// Versions are told apart by number *and* meta: after Redis loses its data, numbering starts at
/// 1 again, and a new version 1 must not be mistaken for the old one.
fn look(
    target: &RedisTarget,
    rules: Arc<RuleSet>,
    limits: ReadLimits,
    known: Option<&str>,
    refused: Option<&str>,
    install: &(dyn Fn(LoadedVersion) + Send + Sync),
) -> Result<WatchEvent, RedisSnapshotError> {
    let Some((version, identity)) = current_identity(target)? else {
        return Err(RedisSnapshotError::NothingPublished {
            address: target.shown().to_string(),
            prefix: target.prefix().to_string(),
        });
    };
    if Some(identity.as_str()) == known || Some(identity.as_str()) == refused {
        return Ok(WatchEvent::Unchanged);
    }
    match load_version(target, &version, rules, limits, &Silent) {
        Ok(loaded) => {
            tracing::info!(
                redis = %target,
                version = %loaded.version,
                snapshot_id = %loaded.meta.snapshot_id,
                persons = loaded.meta.persons,
                "snapshot version loaded from Redis"
            );
            install(loaded);
            Ok(WatchEvent::Loaded(identity))
        }
        // Removed while we read it: the next look finds the newer `current`.
        Err(error) if error.is_transient() => Err(error),
        Err(error) => {
            tracing::error!(redis = %target, %error,
                "snapshot version refused; the snapshot in use keeps serving");
            Ok(WatchEvent::Refused(identity))
        }
    }
}

/// The current version and an identity for it: the number and a digest of its meta (`None`
/// when nothing is published).
fn current_identity(target: &RedisTarget) -> Result<Option<(String, String)>, RedisSnapshotError> {
    let mut con = target.connect()?;
    let Some(version) = read_current(target, &mut con)? else {
        return Ok(None);
    };
    let meta: Option<Vec<u8>> = redis::cmd("GET")
        .arg(target.keys().meta(&version))
        .query(&mut con)
        .map_err(|e| target.unavailable(e))?;
    let digest = meta.map_or_else(|| "-".to_string(), |m| hex::encode(Sha256::digest(m)));
    let identity = format!("{version}/{digest}");
    Ok(Some((version, identity)))
}

/// The notification channel; both halves are kept so the connection stays open.
struct Subscription {
    _sink: redis::aio::PubSubSink,
    stream: redis::aio::PubSubStream,
}

/// Subscribes to the channel; `None` (logged at debug level: the polling reports outages) when
/// Redis cannot be reached.
async fn subscribe(target: &RedisTarget) -> Option<Subscription> {
    let attempt = async {
        let client = target.client().ok()?;
        let mut pubsub = client.get_async_pubsub().await.ok()?;
        pubsub.subscribe(target.keys().channel()).await.ok()?;
        let (sink, stream) = pubsub.split();
        Some(Subscription {
            _sink: sink,
            stream,
        })
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Some(subscription)) => Some(subscription),
        _ => {
            tracing::debug!(redis = %target, "cannot subscribe to the Redis notification channel");
            None
        }
    }
}
