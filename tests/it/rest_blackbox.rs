//! The REST door of the real service: the public table through single questions and a batch,
//! SOAP and REST agreeing on generated snapshots, headers, problem documents and limits.

use std::collections::HashSet;
use std::path::Path;

use crate::support::server::{start, start_with, Server};
use crate::support::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";
const BATCH: &str = "/v1/integration-obligation:batch";

/// A JSON answer or problem in the CSV's columns.
fn json_row(value: &Value) -> [String; 5] {
    let text = |v: &Value| match v {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    if let Some(code) = value.get("code").or_else(|| value.pointer("/error/code")) {
        return [
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            text(code),
        ];
    }
    [
        text(&value["subject"]),
        text(&value["compliant"]),
        text(&value["result"]),
        value.pointer("/reason/code").map(text).unwrap_or_default(),
        String::new(),
    ]
}

fn get(server: &Server, insz: &str, query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = crate::support::http()
        .get(server.url(&format!("/v1/integration-obligation/{insz}?{query}")))
        .send()
        .expect("REST answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().expect("a JSON body"))
}

fn batch(server: &Server, body: &Value) -> (u16, Value) {
    let response = crate::support::http()
        .post(server.url(BATCH))
        .json(body)
        .send()
        .expect("REST batch answers");
    (
        response.status().as_u16(),
        response.json().expect("a JSON body"),
    )
}

#[test]
fn public_cases_over_rest_equal_the_table() {
    let server = start(&public_snapshot_path());
    let rows = public_rows();
    for row in &rows {
        let (status, headers, body) = get(&server, &row.insz, &format!("date={}", row.date));
        assert_eq!(json_row(&body), expected_row(row), "{row:?}");
        let expected_status = if row.error.is_empty() { 200 } else { 400 };
        assert_eq!(status, expected_status, "{row:?}");
        let content_type = headers["content-type"].to_str().unwrap();
        if row.error.is_empty() {
            assert_eq!(content_type, "application/json");
            assert!(
                body.get("reason").is_some() == (row.result == "NOK"),
                "{body}"
            );
        } else {
            assert_eq!(content_type, "application/problem+json");
            assert_eq!(
                body["type"],
                format!("urn:kbi-advice:problem:{}", row.error)
            );
        }
    }
    let questions: Vec<Value> = rows
        .iter()
        .map(|r| json!({"insz": r.insz, "date": r.date}))
        .collect();
    let (status, body) = batch(&server, &json!({ "questions": questions }));
    assert_eq!(status, 200);
    let answers = body["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), rows.len());
    for (row, answer) in rows.iter().zip(answers) {
        assert_eq!(json_row(answer), expected_row(row), "{row:?}");
    }
}

/// A generated snapshot in `dir`, and a sample of its INSZ plus INSZ it does not hold.
fn generated(dir: &Path, seed: u64) -> (std::path::PathBuf, Vec<String>) {
    let path = dir.join(format!("generated-{seed}.jsonl"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    kbi_core::snapshot::generate::generate(
        &kbi_core::snapshot::generate::GenerateOptions {
            persons: 2_000,
            seed,
            extracted_at: kbi_core::snapshot::generate::default_extracted_at(),
            snapshot_id: Some(format!("generated-{seed}")),
            with_examples: false,
        },
        &mut file,
    )
    .unwrap();
    drop(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let inszs = text
        .lines()
        .skip(1)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| v["insz"].as_str().map(str::to_string))
        .collect();
    (path, inszs)
}

/// Property: for random persons (and absent INSZ, and malformed ones) and random dates across
/// the regimes, the SOAP door and the REST doors (single and batch) give the same answer.
#[test]
fn soap_and_rest_agree_on_generated_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [11_u64, 12] {
        let (path, inszs) = generated(dir.path(), seed);
        let server = start(&path);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let questions: Vec<(String, String)> = (0..400)
            .map(|i| {
                let insz = match i % 10 {
                    0 => "97081812768".to_string(), // absent
                    1 => "90011510186".to_string(), // check digits wrong
                    _ => inszs[rng.gen_range(0..inszs.len())].clone(),
                };
                let date = format!(
                    "{}-{:02}-{:02}",
                    rng.gen_range(2012..=2027),
                    rng.gen_range(1..=12),
                    rng.gen_range(1..=28)
                );
                (insz, date)
            })
            .collect();

        let soap: Vec<Q> = questions
            .iter()
            .enumerate()
            .map(|(i, (insz, date))| Q::date(&format!("q{i}"), insz, date))
            .collect();
        let response = crate::support::http()
            .post(server.url(SOAP_PATH))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(request(&soap))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body = response.bytes().unwrap();
        let repliek = repliek(&body);
        let soap_rows: Vec<[String; 5]> = repliek
            .at("Antwoorden")
            .unwrap()
            .all("Antwoord")
            .map(answered_row)
            .collect();

        let json_questions: Vec<Value> = questions
            .iter()
            .map(|(insz, date)| json!({"insz": insz, "date": date}))
            .collect();
        let (status, body) = batch(&server, &json!({ "questions": json_questions }));
        assert_eq!(status, 200);
        let batch_rows: Vec<[String; 5]> = body["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(json_row)
            .collect();

        assert_eq!(soap_rows.len(), questions.len());
        let mut kinds = HashSet::new();
        for (i, (insz, date)) in questions.iter().enumerate() {
            assert_eq!(soap_rows[i], batch_rows[i], "question {i} ({date})");
            kinds.insert(soap_rows[i][2].clone() + &soap_rows[i][4]);
            if i % 8 == 0 {
                let (_, _, single) = get(&server, insz, &format!("date={date}"));
                assert_eq!(json_row(&single), soap_rows[i], "question {i} ({date})");
            }
        }
        // The sample really covers answers and errors, or the comparison proves little.
        for kind in ["OK", "NOK", "30001", "30003"] {
            assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
        }
    }
}

#[test]
fn insz_in_written_forms_and_premium_year() {
    let server = start(&manifest_dir().join("data/demo-snapshot.jsonl"));
    let (status, _, plain) = get(&server, "90011510383", "date=2026-01-01");
    assert_eq!(status, 200);
    for written in ["90.01.15-103.83", "900115%20103%2083", "900115-10383"] {
        let (status, _, body) = get(&server, written, "date=2026-01-01");
        assert_eq!(status, 200, "{written}");
        assert_eq!(body, plain, "{written}");
    }
    // Premium year 2027 → reference date 2026-01-01.
    let (status, _, body) = get(&server, "90011510383", "premium_year=2027");
    assert_eq!(status, 200);
    assert_eq!(body, plain);
    for query in [
        "",
        "date=2026-01-01&premium_year=2027",
        "date=2026-1-1",
        "date=x&date=y",
    ] {
        let (status, _, body) = get(&server, "90011510383", query);
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("30002")),
            "{query}"
        );
    }
}

#[test]
fn every_response_carries_request_id_and_server_reference() {
    let server = start(&manifest_dir().join("data/demo-snapshot.jsonl"));
    let client = crate::support::http();
    let url = server.url("/v1/integration-obligation/90011510185?date=2026-01-01");
    let given = client
        .get(&url)
        .header("X-Request-Id", "caller-42")
        .send()
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "caller-42");
    let first = given.headers()["x-referte"].to_str().unwrap().to_string();
    let generated = client.get(&url).send().unwrap();
    let second = generated.headers()["x-referte"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second, "server references are unique");
    assert!(second.len() <= 36);
    assert_eq!(generated.headers()["x-request-id"], second.as_str());
    // Refusals and SOAP carry them too.
    let refused = client
        .get(server.url("/v1/integration-obligation/123?date=2026-01-01"))
        .send()
        .unwrap();
    assert!(refused.headers().contains_key("x-referte"));
    assert!(refused.headers().contains_key("x-request-id"));
    assert_eq!(refused.headers()["cache-control"], "no-store");
}

#[test]
fn batch_limits_and_malformed_bodies_are_clear_problems() {
    let server = start_with(
        &manifest_dir().join("data/demo-snapshot.jsonl"),
        &[],
        &[
            ("KBI_ADVICE__SERVER__REST_BATCH_MAX_QUESTIONS", "3"),
            ("KBI_ADVICE__SERVER__BODY_LIMIT_BYTES", "2000"),
        ],
    );
    let one = json!({"insz": "90011510185", "date": "2026-01-01"});
    let (status, body) = batch(&server, &json!({ "questions": [one, one, one, one] }));
    assert_eq!((status, body["code"].as_str()), (400, Some("30011")));
    let (status, body) = batch(&server, &json!({ "questions": [] }));
    assert_eq!((status, body["code"].as_str()), (400, Some("30012")));
    let (status, body) = batch(&server, &json!({ "vragen": [one] }));
    assert_eq!((status, body["code"].as_str()), (400, Some("30012")));
    let (status, body) = batch(&server, &json!({ "questions": "90011510185" }));
    assert_eq!((status, body["code"].as_str()), (400, Some("30012")));
    assert!(
        !body["detail"].as_str().unwrap().contains("90011510185"),
        "the parser's message must not quote the body: {body}"
    );
    // Wrong member types fail only their own question.
    let (status, body) = batch(
        &server,
        &json!({ "questions": [one, {"insz": 90011510185_u64, "date": "2026-01-01"},
                               {"insz": "90011510185", "date": 20260101}] }),
    );
    assert_eq!(status, 200);
    let codes: Vec<Option<&str>> = body["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.pointer("/error/code").and_then(Value::as_str))
        .collect();
    assert_eq!(codes, [None, Some("30001"), Some("30002")]);

    let response = crate::support::http()
        .post(server.url(BATCH))
        .header("content-type", "application/json")
        .body(format!("{{\"questions\": [{}]}}", " ".repeat(3000)))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = crate::support::http()
        .post(server.url(BATCH))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // An unknown path is a problem document too, and OpenAPI is served.
    let response = crate::support::http()
        .get(server.url("/v2/nothing"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let openapi: Value = crate::support::get(server.url("/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
}

/// The single question's path is routed by its static prefix (docs/performance.md); what the
/// resource pattern `/v1/integration-obligation/{insz}` answered is kept: one non-empty segment
/// (as actix decodes it: `%2F` stays inside the segment), `GET` only (405 with `Allow: GET` and
/// an empty body otherwise), anything else under the prefix not found.
#[test]
fn the_single_path_answers_as_the_one_segment_pattern_did() {
    let server = start(&manifest_dir().join("data/demo-snapshot.jsonl"));
    let client = crate::support::http();
    let (_, _, plain) = get(&server, "90011510383", "date=2026-01-01");
    // Percent-encoded digits are decoded before the segment is read.
    let (status, _, decoded) = get(&server, "%390011510383", "date=2026-01-01");
    assert_eq!((status, &decoded), (200, &plain));
    // An encoded slash is part of the one segment: not an INSZ (30001), not a missing path.
    let (status, _, body) = get(&server, "900115%2F10383", "date=2026-01-01");
    assert_eq!((status, body["code"].as_str()), (400, Some("30001")));
    for path in [
        "/v1/integration-obligation",
        "/v1/integration-obligation/",
        "/v1/integration-obligation/90011510383/",
        "/v1/integration-obligation/90011510383/x",
        "/v1/integration-obligation//90011510383",
        "/v1/integration-obligations/90011510383",
    ] {
        let response = client.get(server.url(path)).send().unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = response.json().unwrap();
        assert_eq!(body["status"], 404, "{path}");
    }
    let url = server.url("/v1/integration-obligation/90011510383?date=2026-01-01");
    for method in [
        reqwest::Method::POST,
        reqwest::Method::HEAD,
        reqwest::Method::DELETE,
    ] {
        let response = client.request(method.clone(), &url).send().unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET", "{method}");
        assert!(!response.headers().contains_key("x-referte"), "{method}");
        assert!(response.bytes().unwrap().is_empty(), "{method}");
    }
    // Only the three questions asked are counted as REST requests, not the 404s and 405s.
    let metrics = client
        .get(server.ops_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let rest_requests: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("kbi_requests_total{door=\"rest\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rest_requests, 3.0, "{metrics}");
}
