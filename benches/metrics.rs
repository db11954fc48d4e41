//! Cost of recording metrics on the hot path: what each answered question and each request add
//! to the service (`record_question` + `observe_request`), and the scrape (`render`).
//!
//! Also counts heap allocations while recording (a counting global allocator) and fails if there
//! are any: the handles are pre-registered, so recording must be atomics only.
//!
//! `cargo bench --bench metrics` (figures in docs/metrics-bench.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kbi_advice::telemetry::metrics::{Door, Metrics, Outcome};
use kbi_core::domain::{Advice, ErrorCode, Insz, ReasonCode, SnapshotMeta};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn answers() -> [Result<Advice, ErrorCode>; 4] {
    let advice = |subject, compliant, reason| Advice {
        insz: Insz::parse("90011510185").expect("demo INSZ"),
        reference_date: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        subject,
        compliant,
        reason,
        found: true,
    };
    [
        Ok(advice(false, true, None)),
        Ok(advice(true, true, None)),
        Ok(advice(true, false, Some(ReasonCode::GeenContract))),
        Err(ErrorCode::InvalidInsz),
    ]
}

fn metrics() -> Metrics {
    let metrics = Metrics::new(&["zorgkas-a", "zorgkas-b"]).expect("metrics");
    metrics.snapshot_loaded(
        &SnapshotMeta {
            snapshot_id: "bench".to_string(),
            extracted_at: Utc
                .with_ymd_and_hms(2026, 11, 1, 2, 0, 0)
                .single()
                .expect("time"),
            persons: 1_000_000,
            facts: Default::default(),
            sources: None,
        },
        "kbi-rules-2022.2",
    );
    metrics
}

/// Records `n` questions and requests and returns the heap allocations made meanwhile (the
/// bench is single-threaded: criterion allocates only between measurements).
fn allocations_while_recording(metrics: &Metrics, n: usize) -> u64 {
    let answers = answers();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for i in 0..n {
        metrics.record_question(black_box(&answers[i % answers.len()]));
        metrics.observe_request(
            Door::ALL[i % Door::ALL.len()],
            Outcome::Ok,
            Duration::from_nanos(40_000 + i as u64),
        );
    }
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn bench(c: &mut Criterion) {
    let metrics = metrics();
    let answers = answers();

    let allocations = allocations_while_recording(&metrics, 100_000);
    println!("allocations while recording 100000 questions and requests: {allocations}");
    assert_eq!(allocations, 0, "recording metrics allocated");

    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_question_ok", |b| {
        b.iter(|| metrics.record_question(black_box(&answers[0])))
    });
    group.bench_function("record_question_nok", |b| {
        b.iter(|| metrics.record_question(black_box(&answers[2])))
    });
    group.bench_function("record_question_error", |b| {
        b.iter(|| metrics.record_question(black_box(&answers[3])))
    });
    group.bench_function("observe_request", |b| {
        b.iter(|| {
            metrics.observe_request(
                black_box(Door::Rest),
                black_box(Outcome::Ok),
                black_box(Duration::from_micros(60)),
            )
        })
    });
    // What the REST single-question handler adds per request.
    group.bench_function("question_and_request", |b| {
        b.iter(|| {
            metrics.record_question(black_box(&answers[2]));
            metrics.observe_request(
                black_box(Door::Rest),
                black_box(Outcome::Ok),
                black_box(Duration::from_micros(60)),
            )
        })
    });
    group.finish();

    // Many threads recording into the same counters: the cost of cache-line contention (thread
    // start-up included, so an upper bound).
    let mut group = c.benchmark_group("metrics_contended");
    group.throughput(Throughput::Elements(4 * 1000));
    group.bench_function("question_and_request_4_threads_x_1000", |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let metrics = &metrics;
                    let answers = &answers;
                    scope.spawn(move || {
                        for i in 0..1000 {
                            metrics.record_question(&answers[(i + t) % 4]);
                            metrics.observe_request(
                                Door::Rest,
                                Outcome::Ok,
                                Duration::from_micros(60),
                            );
                        }
                    });
                }
            })
        })
    });
    group.finish();

    c.bench_function("metrics/render", |b| b.iter(|| black_box(metrics.render())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
