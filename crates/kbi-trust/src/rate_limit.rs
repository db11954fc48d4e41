//! Per-client rate limits (`security-and-audit.md`, Limits): a token bucket per configured
//! client, created up front so that the request path never allocates or takes a global lock —
//! one small mutex per client, held for a few arithmetic operations.
//!
//! A bucket holds at most `burst` tokens, refills at `requests_per_second`, starts full, and a
//! request (single or batch) takes one token. A request refused here gets 429 / Uitzondering
//! 30013, and the server counts it in `kbi_rate_limited_total{client}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clients::{Client, ClientRegistry, RateLimit};

/// Where the limiter reads the time: monotonic nanoseconds from any fixed origin.
pub trait Clock: Send + Sync {
    fn now_nanos(&self) -> u64;
}

/// The real clock: nanoseconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn advance(&self, by: std::time::Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    at: u64,
}

impl Bucket {
    fn try_take(&self, now: u64) -> bool {
        // A poisoned lock only means another request panicked mid-update of two numbers: the
        // numbers are still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_sub(state.at) as f64 / 1e9;
        let burst = f64::from(self.limit.burst);
        state.tokens = (state.tokens + elapsed * self.limit.requests_per_second).min(burst);
        state.at = now.max(state.at);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The buckets of every client that has a `rate_limit`.
pub struct RateLimiter<C: Clock = MonotonicClock> {
    buckets: HashMap<String, Bucket>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("clients", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter<MonotonicClock> {
    /// Buckets for the clients of `registry`, on the real clock.
    pub fn new(registry: &ClientRegistry) -> Self {
        RateLimiter::with_clock(registry, MonotonicClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// Buckets for the clients of `registry`, on `clock`.
    pub fn with_clock(registry: &ClientRegistry, clock: C) -> Self {
        let now = clock.now_nanos();
        let buckets = registry
            .clients()
            .iter()
            .filter_map(|client| {
                let limit = client.rate_limit?;
                let bucket = Bucket {
                    limit,
                    state: Mutex::new(BucketState {
                        tokens: f64::from(limit.burst),
                        at: now,
                    }),
                };
                Some((client.id.clone(), bucket))
            })
            .collect();
        RateLimiter { buckets, clock }
    }

    /// Takes one token from `client`'s bucket: `false` means refuse the request (30013 / 429).
    /// A client without a configured limit is always let through.
    pub fn try_acquire(&self, client: &Client) -> bool {
        self.try_acquire_id(&client.id)
    }

    /// [`try_acquire`](Self::try_acquire) by client id.
    pub fn try_acquire_id(&self, client_id: &str) -> bool {
        match self.buckets.get(client_id) {
            Some(bucket) => bucket.try_take(self.clock.now_nanos()),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn registry() -> ClientRegistry {
        ClientRegistry::from_toml(
            r#"
[[client]]
id = "limited"
afzenders = ["a"]
hoedanigheden = ["1"]
operations = ["single"]
protocol = "demo"
rate_limit = { requests_per_second = 2, burst = 3 }

[[client]]
id = "free"
afzenders = ["b"]
hoedanigheden = ["1"]
operations = ["single"]
protocol = "demo"
"#,
        )
        .unwrap()
    }

    fn limiter() -> (RateLimiter<Arc<ManualClock>>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (RateLimiter::with_clock(&registry(), clock.clone()), clock)
    }

    #[test]
    fn burst_then_refused() {
        let (limiter, _) = limiter();
        let taken: Vec<bool> = (0..5).map(|_| limiter.try_acquire_id("limited")).collect();
        assert_eq!(taken, [true, true, true, false, false]);
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let (limiter, clock) = limiter();
        for _ in 0..3 {
            assert!(limiter.try_acquire_id("limited"));
        }
        assert!(!limiter.try_acquire_id("limited"));
        clock.advance(Duration::from_millis(499));
        assert!(!limiter.try_acquire_id("limited"), "not yet half a second");
        clock.advance(Duration::from_millis(1));
        assert!(
            limiter.try_acquire_id("limited"),
            "one token after 0.5 s at 2/s"
        );
        assert!(!limiter.try_acquire_id("limited"));
    }

    #[test]
    fn never_more_than_the_burst_after_idling() {
        let (limiter, clock) = limiter();
        clock.advance(Duration::from_secs(3600));
        let taken = (0..10)
            .filter(|_| limiter.try_acquire_id("limited"))
            .count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn sustained_rate_over_a_simulated_minute() {
        let (limiter, clock) = limiter();
        // Ask 10 times per second for 60 s: 3 (burst) + 2/s × 60 s get through.
        let mut granted = 0;
        for _ in 0..600 {
            if limiter.try_acquire_id("limited") {
                granted += 1;
            }
            clock.advance(Duration::from_millis(100));
        }
        assert!((122..=123).contains(&granted), "{granted}");
    }

    #[test]
    fn clients_without_a_limit_and_unknown_ids_pass() {
        let (limiter, _) = limiter();
        assert!((0..1000).all(|_| limiter.try_acquire_id("free")));
        assert!(limiter.try_acquire_id("nobody"));
        let registry = registry();
        let free = registry.identify_by_id("free").unwrap();
        assert!(limiter.try_acquire(free));
    }

    #[test]
    fn buckets_are_per_client_and_thread_safe() {
        let (limiter, _) = limiter();
        let limiter = Arc::new(limiter);
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let limiter = limiter.clone();
                    s.spawn(move || {
                        (0..100)
                            .filter(|_| limiter.try_acquire_id("limited"))
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            granted, 3,
            "the burst is shared by all threads of one client"
        );
    }
}
