//! Micro-benchmarks of the core: INSZ parsing, index lookup (100 k vs 1 M persons), and the
//! answer to one question.

use std::sync::Arc;

use chrono::NaiveDate;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use kbi_core::domain::{Insz, Question, Reference, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::{default_extracted_at, generate, GenerateOptions};
use kbi_core::snapshot::load_bytes;
use rand::{Rng, SeedableRng};

fn insz_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("insz_parse");
    group.bench_function("digits", |b| {
        b.iter(|| Insz::parse(black_box("85073003328")))
    });
    group.bench_function("written_form", |b| {
        b.iter(|| Insz::parse(black_box("85.07.30-033.28")))
    });
    group.bench_function("invalid_check_digits", |b| {
        b.iter(|| Insz::parse(black_box("85073003329")))
    });
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let rules = Arc::new(RuleSet::shipped());
    let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let mut group = c.benchmark_group("index_lookup");
    // KBI_BENCH_PERSONS=100000,10000000 for the flatness comparison of performance.md (the 10 M
    // case generates and loads 1.1 GB first).
    let sizes: Vec<u64> = std::env::var("KBI_BENCH_PERSONS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for persons in sizes {
        let mut text = Vec::new();
        let options = GenerateOptions {
            persons,
            seed: 7,
            extracted_at: default_extracted_at(),
            snapshot_id: None,
            with_examples: false,
        };
        generate(&options, &mut text).unwrap();
        let snapshot = load_bytes(text, rules.clone(), &Silent).unwrap();
        // Random persons that exist, so every lookup walks the search and the timeline.
        let inszs: Vec<Insz> = snapshot.index.iter().map(|(i, _)| i).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let probes: Vec<Insz> = (0..4096)
            .map(|_| inszs[rng.gen_range(0..inszs.len())])
            .collect();
        drop(inszs);
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("advise", persons), &persons, |b, _| {
            b.iter(|| {
                i = (i + 1) & 4095;
                let q = Question {
                    insz: probes[i],
                    reference: Reference::Date(date),
                };
                black_box(snapshot.advise(&q)).is_ok()
            })
        });
    }
    group.finish();
}

fn question_from_text(c: &mut Criterion) {
    c.bench_function("question_parse", |b| {
        b.iter(|| {
            Question::parse(
                black_box("85073003328"),
                Some(black_box("2024-01-01")),
                None,
            )
        })
    });
}

criterion_group!(benches, insz_parsing, index_lookup, question_from_text);
criterion_main!(benches);
