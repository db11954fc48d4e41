//! The SOAP door end to end without HTTP: parse + answer + render for 1 and 100 questions, the
//! parse alone, and how fast hostile bodies are refused. Answers come from the demo snapshot.
//!
//! `cargo bench --bench soap`

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kbi_core::domain::RuleSet;
use kbi_core::io::Silent;
use kbi_core::snapshot::load_path;
use kbi_wire::soap::{
    parse, respond_at, SoapCall, XmlLimits, HARDENED_INLINE_MAX_BYTES, INLINE_MAX_BYTES,
};

/// Demo INSZ with every kind of answer on 2026-01-01 (OK, NOK ×3, not subject, not in the
/// snapshot) and one invalid.
const INSZ: [&str; 7] = [
    "90011510185",
    "90011510383",
    "91022010754",
    "95063012344",
    "96071412565",
    "97081812768",
    "85073003329",
];

fn request(questions: usize) -> String {
    let vragen: String = (0..questions)
        .map(|i| {
            format!(
                "<Vraag><Referte>vraag-{i}</Referte><Inhoud><Criteria><INSZ>{}</INSZ><Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag>",
                INSZ[i % INSZ.len()]
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:geef=\"urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00\"><soapenv:Header/><soapenv:Body><geef:GeefAdviesInburgeringsplicht><Verzoek><Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht><Type>VRAAG</Type><Tijdstip><Datum>2026-11-02</Datum><Tijd>09:15:00.000</Tijd></Tijdstip><Afzender><Identificatie>demo.kbi-advice</Identificatie><Referte>bench-0001</Referte><Hoedanigheid>9999</Hoedanigheid></Afzender></Bericht></Context><Vragen>{vragen}</Vragen></Verzoek></geef:GeefAdviesInburgeringsplicht></soapenv:Body></soapenv:Envelope>"
    )
}

fn soap(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-snapshot.jsonl");
    let snapshot = load_path(&path, Arc::new(RuleSet::shipped()), &Silent).expect("demo snapshot");
    let limits = XmlLimits::default();
    let call = SoapCall {
        snapshot: Some(&snapshot),
        limits: &limits,
        server_referte: "0b7d6c1e-3f8a-4c55-9a0e-5d2c7f9e1a42",
        service_identificatie: "kbi-advice",
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 9, 15, 1).unwrap();

    let mut group = c.benchmark_group("soap_respond");
    for questions in [1usize, 100] {
        let body = request(questions);
        // Sanity: the benchmark measures answers, not refusals.
        assert_eq!(
            respond_at(body.as_bytes(), &call, now).questions.len(),
            questions
        );
        group.throughput(Throughput::Elements(questions as u64));
        group.bench_with_input(
            BenchmarkId::new("questions", questions),
            &body,
            |b, body| b.iter(|| respond_at(black_box(body.as_bytes()), &call, now)),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("soap_parse");
    for questions in [1usize, 100] {
        let body = request(questions);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("questions", questions),
            &body,
            |b, body| b.iter(|| parse::parse(black_box(body.as_bytes()), &limits)),
        );
        // The same body through the hardened parser alone (what every body cost before the fast
        // reader, and what every deferred body costs).
        group.bench_with_input(
            BenchmarkId::new("hardened_questions", questions),
            &body,
            |b, body| {
                b.iter(|| parse::parse_without_fast_reader(black_box(body.as_bytes()), &limits))
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("soap_refuse");
    let laughs = format!(
        "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
        request(1)
    );
    let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    let many = request(1).replace(
        "<soapenv:Header/>",
        &format!("<soapenv:Header>{}</soapenv:Header>", "<h/>".repeat(60_000)),
    );
    for (name, body) in [
        ("doctype", laughs),
        ("deep_400kB", deep),
        ("many_elements_240kB", many),
    ] {
        assert_eq!(respond_at(body.as_bytes(), &call, now).http_status, 500);
        group.bench_with_input(BenchmarkId::new("fault", name), &body, |b, body| {
            b.iter(|| respond_at(black_box(body.as_bytes()), &call, now))
        });
    }
    group.finish();
}

/// Hostile bodies of `size` bytes (a little less), each the worst of its kind the limits still
/// let through as far as they go: what a body the server reads on its network thread can cost
/// at most (any body up to [`HARDENED_INLINE_MAX_BYTES`]; up to [`INLINE_MAX_BYTES`] only the
/// ones the fast reader takes, here `questions`).
fn hostile_bodies(size: usize) -> Vec<(&'static str, String)> {
    let valid = request(1);
    // Room for the filling, less what wrapping it in a Header adds.
    let room = size.saturating_sub(valid.len() + 40);
    let fill = |unit: &str| unit.repeat(room / unit.len());
    let in_header = |inner: String| {
        valid.replace(
            "<soapenv:Header/>",
            &format!("<soapenv:Header>{inner}</soapenv:Header>"),
        )
    };
    let attributes: String = (0..63).map(|i| format!(" a{i}=\"\"")).collect();
    let declarations: String = (0..31).map(|i| format!(" xmlns:p{i}=\"u\"")).collect();
    let nest = format!("{}{}", "<a>".repeat(28), "</a>".repeat(28));
    let vraag = format!(
        "<Vraag><Referte>q</Referte><Inhoud><Criteria><INSZ>{}</INSZ><Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag>",
        INSZ[0]
    );
    let questions = (room / vraag.len()).min(999);
    vec![
        ("empty_elements", in_header(fill("<h/>"))),
        ("attributes", in_header(fill(&format!("<h{attributes}/>")))),
        (
            "namespace_declarations",
            in_header(fill(&format!("<h{declarations}/>"))),
        ),
        ("nesting", in_header(fill(&nest))),
        ("comments", in_header(fill("<!---->"))),
        (
            "character_references",
            valid.replace(">vraag-0<", &format!(">{}<", fill("&#49;"))),
        ),
        (
            "long_value",
            valid.replace(">vraag-0<", &format!(">{}<", fill("7"))),
        ),
        (
            "questions",
            valid.replace("<Vragen>", &format!("<Vragen>{}", vraag.repeat(questions))),
        ),
    ]
}

/// The bound that lets the server read and judge small bodies on its network thread instead of
/// handing them to the compute pool: the worst hostile body of [`HARDENED_INLINE_MAX_BYTES`] and
/// the canonical body of [`INLINE_MAX_BYTES`] must cost well under a millisecond (`docs/soap.md`,
/// "Inline or compute pool"); the other kinds at 16 KiB show why the hardened parser's bound is
/// the smaller one.
fn soap_inline_bound(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-snapshot.jsonl");
    let snapshot = load_path(&path, Arc::new(RuleSet::shipped()), &Silent).expect("demo snapshot");
    let limits = XmlLimits::default();
    let call = SoapCall {
        snapshot: Some(&snapshot),
        limits: &limits,
        server_referte: "0b7d6c1e-3f8a-4c55-9a0e-5d2c7f9e1a42",
        service_identificatie: "kbi-advice",
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 9, 15, 1).unwrap();
    let mut group = c.benchmark_group("soap_inline_bound");
    group.sample_size(20);
    for size in [HARDENED_INLINE_MAX_BYTES, INLINE_MAX_BYTES] {
        for (name, body) in hostile_bodies(size) {
            assert!(body.len() <= size, "{name}: {} bytes", body.len());
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &body, |b, body| {
                b.iter(|| respond_at(black_box(body.as_bytes()), &call, now))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, soap, soap_inline_bound);
criterion_main!(benches);
