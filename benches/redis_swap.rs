//! Peak memory of a replica swapping to a new version published in Redis (docs/redis-bench.md).
//!
//! The replica is the real watcher `serve` runs, swapping into an `ArcSwap` like the live store:
//! it loads version 1, the peak is reset (`/proc/self/clear_refs`), `current` is switched to
//! version 2 (the same file published again, so both indexes are the same size), and the peak
//! while the new index is built beside the old one is read back.
//!
//! ```sh
//! redis-server --port 56379 --bind 127.0.0.1 --save "" --appendonly no &
//! KBI_BENCH_REDIS=redis://127.0.0.1:56379 KBI_BENCH_SNAPSHOT=/tmp/kbi/s10m.jsonl \
//!     cargo bench --bench redis_swap
//! ```
//! Without `KBI_BENCH_REDIS` it says so and does nothing (CI has no Redis to spare for it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use kbi_advice::snapshot::redis::{self as store, PublishOptions, RedisTarget};
use kbi_core::domain::{CompiledSnapshot, RuleSet};
use kbi_core::io::Silent;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let (Ok(url), Ok(file)) = (
        std::env::var("KBI_BENCH_REDIS"),
        std::env::var("KBI_BENCH_SNAPSHOT"),
    ) else {
        eprintln!("redis_swap: set KBI_BENCH_REDIS and KBI_BENCH_SNAPSHOT to run (see the file)");
        return;
    };
    let target = RedisTarget::parse(&url, Some("kbibench")).expect("KBI_BENCH_REDIS");
    let rules = Arc::new(RuleSet::shipped());
    let options = PublishOptions::default();
    let file = std::path::PathBuf::from(file);
    let first = store::publish(&target, &file, rules.clone(), &options, &Silent).expect("publish");
    let second = store::publish(&target, &file, rules.clone(), &options, &Silent).expect("publish");
    // Serve the first version to start with, without a notification.
    let mut con = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connect");
    redis::cmd("SET")
        .arg(target.keys().current())
        .arg(&first.version)
        .query::<()>(&mut con)
        .expect("SET current");

    let live: Arc<ArcSwapOption<CompiledSnapshot>> = Arc::new(ArcSwapOption::empty());
    let status = Arc::new(Loads::default());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let swap_into = live.clone();
    runtime.spawn(store::watch_redis(
        target.clone(),
        rules,
        store::WatchOptions {
            poll_interval: Duration::from_millis(100),
            ..store::WatchOptions::default()
        },
        status.clone(),
        move |loaded: store::LoadedVersion| swap_into.store(Some(Arc::new(loaded.snapshot))),
    ));
    let wait_for = |n: u64| {
        while status.0.load(Ordering::Relaxed) < n {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let started = Instant::now();
    wait_for(1);
    let first_load = started.elapsed();
    let index = live.load_full().map(|s| s.index.heap_bytes()).unwrap_or(0);
    let steady = status_kib("VmRSS:");
    // Reset the peak to the current resident size (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let started = Instant::now();
    redis::cmd("SET")
        .arg(target.keys().current())
        .arg(&second.version)
        .query::<()>(&mut con)
        .expect("SET current");
    wait_for(2);
    let swap = started.elapsed();
    let peak = status_kib("VmHWM:");
    let after = status_kib("VmRSS:");
    println!(
        "redis_swap: {} persons; first load {first_load:.2?}, swap (poll + load + store) {swap:.2?}",
        first.meta.persons
    );
    println!(
        "redis_swap: index {:.1} MiB; resident before the swap {:.1} MiB; peak during the swap \
         {:.1} MiB ({:.2} x the steady state, {:.2} x the index); resident after {:.1} MiB",
        index as f64 / 1048576.0,
        mib(steady),
        mib(peak),
        peak as f64 / steady as f64,
        peak as f64 * 1024.0 / index as f64,
        mib(after),
    );
    runtime.shutdown_background();
}

/// Counts the versions the watcher loaded and handed over.
#[derive(Default)]
struct Loads(AtomicU64);

impl store::WatchObserver for Loads {
    fn observed(&self, outcome: store::WatchOutcome<'_>) {
        if let store::WatchOutcome::Loaded { .. } = outcome {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
