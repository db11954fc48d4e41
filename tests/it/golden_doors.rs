//! Golden test of the two doors: a recorded set of REST and SOAP requests (single, batch,
//! refused, malformed, hostile, audit failure) sent to the real binary, and for each one the
//! response (status, the headers a caller relies on, body), the audit lines it wrote and the
//! change it made to every metric, compared byte for byte with `tests/fixtures/golden/*.txt`.
//!
//! It pins what the doors do today, so that a refactor of them can show it changed nothing.
//!
//! Re-recording (after a change that is meant to change what the doors send):
//! `GOLDEN_RECORD=1 cargo test --test it golden_doors`, then review `git diff tests/fixtures/golden`.
//!
//! Only what truly differs between two runs is normalised, each by one rule of [`Normaliser`]:
//! the server reference (random instance prefix), the reply time of a SOAP reply, the audit
//! record's time and its chain hash (a hash over a line that holds the time), and the timing
//! metrics (durations, process and snapshot age). Everything else is compared exactly.
//!
//! The audit-failure scenarios fill a small tmpfs under the audit directory: like the full-disk
//! test of `trust_service.rs`, this needs root (the test sandbox is root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::server::{start_with, Server};
use crate::support::{manifest_dir, request, request_with, CONTEXT, Q, SOAP_NS, TARGET_NS};

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";
const REST_PATH: &str = "/v1/integration-obligation";
const TEXT_XML: &str = "text/xml; charset=utf-8";

/// A found INSZ of the demo snapshot, one that is not in it, and a text that is not an INSZ.
const FOUND: &str = "90011510383";
const FOUND_NOK: &str = "01092150050";
const NOT_FOUND: &str = "85073003328";
const NOT_INSZ: &str = "12345678901";

/// The response headers a caller relies on, in this order (`date`, `content-length` and
/// connection headers are transport, not the door's answer).
const HEADERS: [&str; 6] = [
    "content-type",
    "cache-control",
    "x-referte",
    "x-request-id",
    "retry-after",
    "allow",
];

/// The registry of the golden runs: `demo` may do everything, `single` may not batch, `slow`
/// and `slow-soap` have one token and (practically) no refill, so their second request is
/// rate-limited whatever the speed of the machine. `premium-only` and `vsb` ask under the shipped
/// `agii-vsb` protocol (term from 2021-10-01, no end; windows from 2022): the first only for the
/// reduced premium, so its date questions get 30005; the second gets 30005 for reference dates
/// before 2022.
const REGISTRY: &str = r#"
[[client]]
id = "demo"
afzenders = ["demo.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "demo"

[[client]]
id = "single"
afzenders = ["single.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single"]
protocol = "demo"

[[client]]
id = "slow"
afzenders = ["slow.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "demo"
rate_limit = { requests_per_second = 0.0001, burst = 1 }

[[client]]
id = "slow-soap"
afzenders = ["slow-soap.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "demo"
rate_limit = { requests_per_second = 0.0001, burst = 1 }

[[client]]
id = "premium-only"
afzenders = ["premium-only.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "agii-vsb"
purposes = ["reduced-premium"]

[[client]]
id = "vsb"
afzenders = ["vsb.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "agii-vsb"
"#;

/// Small limits so that the over-the-limit cases stay small.
const LIMITS: [(&str, &str); 4] = [
    ("KBI_ADVICE__SERVER__REST_BATCH_MAX_QUESTIONS", "3"),
    ("KBI_ADVICE__SERVER__SOAP_MAX_QUESTIONS", "3"),
    ("KBI_ADVICE__SERVER__BODY_LIMIT_BYTES", "4096"),
    ("KBI_ADVICE__SERVER__SOAP_MAX_DEPTH", "16"),
];

/// One recorded request.
struct Case {
    name: &'static str,
    method: &'static str,
    /// Path and query.
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Case {
    fn get(name: &'static str, path: impl Into<String>) -> Case {
        Case {
            name,
            method: "GET",
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn post(name: &'static str, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Case {
        Case {
            name,
            method: "POST",
            path: path.into(),
            headers: vec![("content-type", content_type.into())],
            body: body.into(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }

    /// A REST request as client `client`.
    fn rest_as(self, client: &str) -> Case {
        self.header("x-client-id", client)
    }

    fn soap(name: &'static str, body: impl Into<Vec<u8>>) -> Case {
        Case::post(name, SOAP_PATH, TEXT_XML, body)
    }

    fn batch(name: &'static str, body: &str) -> Case {
        Case::post(
            name,
            &format!("{REST_PATH}:batch"),
            "application/json",
            body.as_bytes().to_vec(),
        )
        .rest_as("demo")
    }
}

/// The SOAP context of a request from `afzender` in capacity `hoedanigheid`.
fn context(afzender: &str, hoedanigheid: &str) -> String {
    CONTEXT.replace("demo.kbi-advice", afzender).replace(
        "<Hoedanigheid>9999<",
        &format!("<Hoedanigheid>{hoedanigheid}<"),
    )
}

/// The requests against the normal server, in the order they are sent (the rate-limited cases
/// depend on it).
fn cases() -> Vec<Case> {
    let single = |insz: &str, query: &str| format!("{REST_PATH}/{insz}{query}");
    let three = [
        Q::date("v1", FOUND, "2026-01-01"),
        Q::year("v2", FOUND_NOK, "2026"),
        Q::date("v3", NOT_INSZ, "2026-01-01"),
    ];
    let nested = format!(
        "{{\"questions\": [{}{}]}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let deep_xml = format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\"><soapenv:Body>{}{}</soapenv:Body></soapenv:Envelope>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    let billion_laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
         <soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\"><soapenv:Body><geef:GeefAdviesInburgeringsplicht xmlns:geef=\"{TARGET_NS}\">&lol2;</geef:GeefAdviesInburgeringsplicht></soapenv:Body></soapenv:Envelope>"
    );
    vec![
        // REST, one question.
        Case::get("rest_single_found", single(FOUND, "?date=2026-01-01"))
            .rest_as("demo")
            .header("x-request-id", "golden-request-1"),
        Case::get(
            "rest_single_nok_premium_year",
            single(FOUND_NOK, "?premium_year=2026"),
        )
        .rest_as("demo"),
        Case::get("rest_single_not_found", single(NOT_FOUND, "")).rest_as("demo"),
        Case::get(
            "rest_single_not_an_insz",
            single(NOT_INSZ, "?date=2026-01-01"),
        )
        .rest_as("demo")
        .header("x-request-id", "not a sane id"),
        Case::get("rest_single_bad_date", single(FOUND, "?date=2026-13-01")).rest_as("demo"),
        Case::get(
            "rest_single_repeated_parameter",
            single(FOUND, "?date=2026-01-01&date=2026-01-02"),
        )
        .rest_as("demo"),
        Case::get(
            "rest_single_date_and_year",
            single(FOUND, "?date=2026-01-01&premium_year=2026"),
        )
        .rest_as("demo"),
        // Questions the snapshot refuses (too far ahead of its extraction, before any rule set).
        Case::get(
            "rest_single_date_far_ahead",
            single(FOUND, "?date=2099-01-01"),
        )
        .rest_as("demo"),
        Case::get(
            "rest_single_date_before_rules",
            single(FOUND, "?date=1990-01-01"),
        )
        .rest_as("demo"),
        // REST refusals of the caller.
        Case::get("rest_single_no_client", single(FOUND, "")),
        Case::get("rest_single_unknown_client", single(FOUND, "")).rest_as("nobody"),
        Case::get("rest_single_rate_first", single(FOUND, "")).rest_as("slow"),
        Case::get("rest_single_rate_limited", single(FOUND, "")).rest_as("slow"),
        Case::post(
            "rest_batch_not_allowed",
            &format!("{REST_PATH}:batch"),
            "application/json",
            format!("{{\"questions\":[{{\"insz\":\"{FOUND}\"}}]}}"),
        )
        .rest_as("single"),
        // REST batches.
        Case::batch(
            "rest_batch_mixed",
            &format!(
                "{{\"questions\":[{{\"insz\":\"{FOUND}\",\"date\":\"2026-01-01\"}},\
                 {{\"insz\":\"{FOUND_NOK}\",\"premium_year\":2026,\"extra\":[1]}},\
                 {{\"insz\":12345678901,\"date\":true}}],\"other\":null}}"
            ),
        ),
        Case::batch(
            "rest_batch_wrong_member_types",
            &format!(
                "{{\"questions\":[{{\"insz\":\"{FOUND}\",\"date\":20260101}},\
                 {{\"insz\":\"{NOT_FOUND}\",\"premium_year\":\"twenty\"}},{{}}]}}"
            ),
        ),
        Case::batch("rest_batch_not_json", "{\"questions\": [ {\"insz\": \"9001"),
        Case::batch(
            "rest_batch_array_question",
            "{\"questions\": [[\"90011510383\"]]}",
        ),
        Case::batch("rest_batch_not_an_object", "[1, 2, 3]"),
        Case::batch("rest_batch_no_questions", "{\"vragen\": []}"),
        Case::batch("rest_batch_empty", "{\"questions\": []}"),
        Case::batch(
            "rest_batch_too_many",
            &format!(
                "{{\"questions\":[{}]}}",
                vec![format!("{{\"insz\":\"{FOUND}\"}}"); 4].join(",")
            ),
        ),
        Case::batch("rest_batch_hostile_nesting", &nested),
        Case::batch(
            "rest_batch_too_large",
            &format!("{{\"pad\":\"{}\"}}", "x".repeat(5000)),
        ),
        Case::post(
            "rest_batch_wrong_content_type",
            &format!("{REST_PATH}:batch"),
            "text/plain",
            "{\"questions\": []}",
        )
        .rest_as("demo"),
        Case::get("rest_batch_get", format!("{REST_PATH}:batch")).rest_as("demo"),
        // SOAP.
        Case::soap("soap_single_found", request(&three[..1]))
            .header("x-request-id", "golden-soap-1"),
        Case::soap("soap_batch_mixed", request(&three)),
        Case::soap(
            "soap_batch_question_faults",
            request(&[
                Q {
                    referte: None,
                    insz: Some(FOUND.into()),
                    date: Some("2026-01-01".into()),
                    year: None,
                },
                Q::date("v2", FOUND, "2026-02-30"),
                Q::date(&"r".repeat(37), FOUND, "2026-01-01"),
            ]),
        ),
        Case::soap(
            "soap_snapshot_refusals",
            request(&[
                Q::date("v1", FOUND, "2099-01-01"),
                Q::date("v2", NOT_FOUND, "1990-01-01"),
            ]),
        ),
        Case::soap(
            "soap_invalid_context",
            request_with(&CONTEXT.replace("01.00.0000", "02.00.0000"), &three[..1]),
        ),
        Case::soap(
            "soap_unknown_sender",
            request_with(&context("nobody.kbi-advice", "9999"), &three[..1]),
        ),
        Case::soap(
            "soap_wrong_capacity",
            request_with(&context("demo.kbi-advice", "1234"), &three[..1]),
        ),
        Case::soap(
            "soap_batch_not_allowed",
            request_with(&context("single.kbi-advice", "9999"), &three[..2]),
        ),
        Case::soap(
            "soap_single_allowed_for_single",
            request_with(&context("single.kbi-advice", "9999"), &three[..1]),
        ),
        Case::soap(
            "soap_rate_first",
            request_with(&context("slow-soap.kbi-advice", "9999"), &three[..1]),
        ),
        Case::soap(
            "soap_rate_limited",
            request_with(&context("slow-soap.kbi-advice", "9999"), &three[..1]),
        ),
        Case::soap(
            "soap_too_many_questions",
            request(&[three.clone(), three.clone()].concat()[..4]),
        ),
        // Two refusals at once: which one wins is the order of admission.
        Case::soap(
            "soap_too_many_from_a_client_that_may_not_batch",
            request_with(
                &context("single.kbi-advice", "9999"),
                &[three.clone(), three.clone()].concat()[..4],
            ),
        ),
        Case::soap(
            "soap_too_many_from_a_rate_limited_client",
            request_with(
                &context("slow-soap.kbi-advice", "9999"),
                &[three.clone(), three.clone()].concat()[..4],
            ),
        ),
        Case::soap("soap_no_questions", request(&[])),
        Case::soap("soap_empty_body", Vec::new()),
        Case::soap("soap_not_xml", "this is not <xml"),
        Case::soap("soap_not_soap", "<?xml version=\"1.0\"?><root/>"),
        Case::soap("soap_hostile_dtd", billion_laughs),
        Case::soap("soap_hostile_depth", deep_xml),
        Case::soap("soap_too_large", request(&vec![three[0].clone(); 30])),
        Case::get("soap_get_without_wsdl", SOAP_PATH),
        // Outside the caller's protocol (30005), after every case above so that their server
        // references and audit sequence numbers stay as recorded.
        Case::get(
            "rest_single_purpose_not_for_client",
            single(FOUND, "?date=2026-01-01"),
        )
        .rest_as("premium-only"),
        Case::get(
            "rest_single_premium_year_for_client",
            single(FOUND_NOK, "?premium_year=2026"),
        )
        .rest_as("premium-only"),
        Case::get(
            "rest_single_outside_window",
            single(FOUND, "?date=2021-06-01"),
        )
        .rest_as("vsb"),
        Case::post(
            "rest_batch_outside_protocol",
            &format!("{REST_PATH}:batch"),
            "application/json",
            format!(
                "{{\"questions\":[{{\"insz\":\"{FOUND_NOK}\",\"premium_year\":\"2026\"}},\
                 {{\"insz\":\"{FOUND}\",\"date\":\"2026-01-01\"}},\
                 {{\"insz\":\"{NOT_INSZ}\",\"date\":\"2026-01-01\"}}]}}"
            ),
        )
        .rest_as("premium-only"),
        Case::soap(
            "soap_outside_protocol",
            request_with(
                &context("premium-only.kbi-advice", "9999"),
                &[
                    Q::year("v1", FOUND_NOK, "2026"),
                    Q::date("v2", FOUND, "2026-01-01"),
                    Q::date("v3", NOT_INSZ, "2026-01-01"),
                ],
            ),
        ),
        Case::soap(
            "soap_outside_window",
            request_with(
                &context("vsb.kbi-advice", "9999"),
                &[
                    Q::date("v1", FOUND, "2021-06-01"),
                    Q::year("v2", FOUND, "2021"),
                ],
            ),
        ),
    ]
}

/// The requests against the server whose audit disk is full: every question refused (30021).
fn audit_failure_cases() -> Vec<Case> {
    vec![
        Case::get(
            "audit_failure_rest_single",
            format!("{REST_PATH}/{FOUND}?date=2026-01-01"),
        )
        .rest_as("demo"),
        Case::batch(
            "audit_failure_rest_batch",
            &format!("{{\"questions\":[{{\"insz\":\"{FOUND}\"}},{{\"insz\":\"{NOT_INSZ}\"}}]}}"),
        ),
        Case::soap(
            "audit_failure_soap",
            request(&[
                Q::date("v1", FOUND, "2026-01-01"),
                Q::date("v2", NOT_FOUND, "2026-01-01"),
            ]),
        ),
        // Nothing to audit: unchanged by the full disk.
        Case::soap("audit_failure_soap_fault", "this is not <xml"),
    ]
}

/// The normalisation rules: each replaces one value that differs between two runs of the same
/// requests by a fixed placeholder, and nothing else.
struct Normaliser {
    /// Rule 1: the server reference (`X-Referte`, SOAP reply `Referte`, audit
    /// `server_reference`, and `X-Request-Id` when it echoes it) starts with a random instance
    /// prefix; its counter part is kept, so a reference out of order would still show.
    instance: Option<String>,
}

impl Normaliser {
    fn text(&self, text: &str) -> String {
        let mut text = match &self.instance {
            Some(instance) => text.replace(instance.as_str(), "<instance>"),
            None => text.to_owned(),
        };
        // Rule 2: a SOAP reply's `Context/Bericht/Tijdstip` is the time of the reply. Only the
        // reply's own context has a `Tijdstip` element.
        while let Some(start) = text.find("<Tijdstip><Datum>") {
            let Some(end) = text[start..].find("</Tijdstip>") else {
                break;
            };
            text.replace_range(start..start + end, "<Tijdstip>«reply time»");
        }
        text
    }

    /// One audit line, as written (field order and all): rule 3, its `time` (when the question
    /// was answered) and rule 4, its `prev` chain hash (the hash of the previous line, which holds
    /// that line's time) unless it is the genesis value. `seq` and every other field stay exact.
    fn audit_line(&self, line: &str) -> String {
        let record: serde_json::Value = serde_json::from_str(line).expect("an audit line");
        let field = |name: &str| record[name].as_str().expect("a text field").to_owned();
        let time = format!("\"time\":\"{}\"", field("time"));
        assert_eq!(line.matches(&time).count(), 1, "one time in {line}");
        let mut line = line.replacen(&time, "\"time\":\"«time»\"", 1);
        let prev = field("prev");
        if prev != kbi_audit::GENESIS_PREV {
            let prev = format!("\"prev\":\"{prev}\"");
            assert_eq!(line.matches(&prev).count(), 1, "one prev in {line}");
            line = line.replacen(&prev, "\"prev\":\"«hash of the previous line»\"", 1);
        }
        self.text(&line)
    }
}

/// Rule 5: series that measure time rather than count what was done: latencies (`_sum` and
/// `_bucket` of the duration histograms; their `_count` is kept), the process's own figures,
/// the snapshot's age, and which SOAP reader was used.
fn timing_series(series: &str) -> bool {
    const DURATIONS: [&str; 3] = [
        "kbi_request_duration_seconds",
        "kbi_audit_write_duration_seconds",
        "kbi_audit_wait_seconds",
    ];
    series.starts_with("process_")
        || series.starts_with("kbi_snapshot_age_seconds")
        // Which SOAP reader read a body is how, not what was answered (counted exactly by
        // tests/it/metrics.rs; the fast reader's equality is tests/it/soap_fast.rs).
        || series.starts_with("kbi_soap_fast_path_total")
        || DURATIONS.iter().any(|name| {
            series.starts_with(&format!("{name}_sum"))
                || series.starts_with(&format!("{name}_bucket"))
        })
}

/// Every series of `/metrics` with its value.
fn scrape(server: &Server) -> BTreeMap<String, f64> {
    let text = reqwest::blocking::get(server.ops_url("/metrics"))
        .and_then(|r| r.text())
        .expect("/metrics answers");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The series that changed, with their change (`+1`, `-1`, `+0.5`).
fn metric_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    let mut out = String::new();
    for (series, value) in after {
        if timing_series(series) {
            continue;
        }
        let old = before.get(series).copied().unwrap_or(0.0);
        if *value != old {
            out.push_str(&format!("{series} {:+}\n", value - old));
        }
    }
    for series in before.keys().filter(|s| !after.contains_key(*s)) {
        if !timing_series(series) {
            out.push_str(&format!("{series} gone\n"));
        }
    }
    out
}

/// Every record line of the audit log in `dir`, in order (the zeros of preallocated space are
/// not lines).
fn audit_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let bytes = std::fs::read(path).unwrap();
            String::from_utf8_lossy(&bytes)
                .split('\n')
                .map(|line| line.trim_end_matches('\0').to_owned())
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends `case` and writes down everything it caused, normalised.
fn run(server: &Server, audit_dir: &Path, case: &Case) -> String {
    let client = reqwest::blocking::Client::new();
    let audit_before = audit_lines(audit_dir).len();
    let metrics_before = scrape(server);
    let url = server.url(&case.path);
    let mut builder = match case.method {
        "GET" => client.get(url),
        _ => client.post(url).body(case.body.clone()),
    };
    for (name, value) in &case.headers {
        builder = builder.header(*name, value.as_str());
    }
    let response = builder.send().expect("the service answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().expect("a body").to_vec();
    let metrics_after = scrape(server);
    let audit = audit_lines(audit_dir);

    let referte = headers
        .get("x-referte")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let normaliser = Normaliser {
        instance: referte
            .as_deref()
            .and_then(|r| r.rsplit_once('-'))
            .map(|(instance, _)| instance.to_owned()),
    };

    let mut out = format!("== request\n{} {}\n", case.method, case.path);
    for (name, value) in &case.headers {
        out.push_str(&format!("{name}: {}\n", value.escape_debug()));
    }
    out.push_str(&format!(
        "\n{}\n== response\nstatus {status}\n",
        String::from_utf8_lossy(&case.body)
    ));
    for name in HEADERS {
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            out.push_str(&format!("{name}: {}\n", normaliser.text(&value)));
        }
    }
    out.push_str(&format!(
        "\n{}\n== audit\n",
        normaliser.text(&String::from_utf8_lossy(&body))
    ));
    for line in &audit[audit_before..] {
        out.push_str(&normaliser.audit_line(line));
        out.push('\n');
    }
    out.push_str("== metrics\n");
    out.push_str(&metric_delta(&metrics_before, &metrics_after));
    out
}

fn fixtures() -> PathBuf {
    manifest_dir().join("tests/fixtures/golden")
}

/// Compares (or with `GOLDEN_RECORD=1` records) the outcome of every case; reports every case
/// that differs, with its first differing line.
fn check(outcomes: &[(&str, String)]) {
    let record = std::env::var_os("GOLDEN_RECORD").is_some_and(|v| v == "1");
    let dir = fixtures();
    let mut differences = Vec::new();
    for (name, actual) in outcomes {
        let path = dir.join(format!("{name}.txt"));
        if record {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{} is missing (GOLDEN_RECORD=1 records it)", path.display())
        });
        if &expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(e, a)| e != a)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            differences.push(format!(
                "{name}: line {}\n  recorded: {:?}\n  now:      {:?}",
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                actual.lines().nth(line).unwrap_or("<end>"),
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "the doors answer differently from the recorded golden files \
         (GOLDEN_RECORD=1 re-records them if the change is meant):\n{}",
        differences.join("\n")
    );
}

fn demo_snapshot() -> PathBuf {
    manifest_dir().join("data/demo-snapshot.jsonl")
}

fn registry(dir: &Path) -> String {
    let path = dir.join("clients.toml");
    std::fs::write(&path, REGISTRY).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_doors_answer_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let mut envs: Vec<(&str, &str)> = LIMITS.to_vec();
    envs.push(("KBI_ADVICE__CLIENTS__REGISTRY", registry.as_str()));
    let server = start_with(&demo_snapshot(), &[], &envs);
    let outcomes: Vec<(&str, String)> = cases()
        .iter()
        .map(|case| (case.name, run(&server, server.audit_dir(), case)))
        .collect();
    check(&outcomes);
}

#[test]
fn the_doors_refuse_as_recorded_when_the_audit_disk_is_full() {
    let mount = crate::support::SmallDisk::mount();
    let config = tempfile::tempdir().unwrap();
    let registry = registry(config.path());
    let audit = mount.path().join("audit");
    let audit_text = audit.to_string_lossy().into_owned();
    let mut envs: Vec<(&str, &str)> = LIMITS.to_vec();
    envs.extend([
        ("KBI_ADVICE__CLIENTS__REGISTRY", registry.as_str()),
        ("KBI_ADVICE__AUDIT__DIR", audit_text.as_str()),
        // Segments that grow with each write: the first record already finds the disk full
        // (a preallocated segment would take records until its reserved space is used).
        ("KBI_ADVICE__AUDIT__PREALLOCATE", "false"),
    ]);
    let server = start_with(&demo_snapshot(), &[], &envs);
    // Fill the disk to the last byte before any question is asked.
    let mut file = std::fs::File::create(mount.path().join("filler")).unwrap();
    let block = vec![b'x'; 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    while std::io::Write::write_all(&mut file, b"x").is_ok() {}
    drop(file);
    let outcomes: Vec<(&str, String)> = audit_failure_cases()
        .iter()
        .map(|case| (case.name, run(&server, &audit, case)))
        .collect();
    check(&outcomes);
}
