//! `/metrics` of the real service after real traffic through every door: the exposition passes
//! `promtool check metrics`, the counters moved by exactly the questions asked (by result and
//! reason), the errors by code and the requests by door and outcome, and no INSZ appears.
//!
//! Needs `promtool` (installed by `scripts/setup/prometheus.sh`).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::server::{start, Server};
use crate::support::{request, request_with, CONTEXT, Q};

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

/// What one question should count as: `Ok(None)` OK, `Ok(Some(reason))` NOK, `Err(code)` refused.
type Expected = Result<Option<&'static str>, &'static str>;

/// Questions on the demo snapshot (README table) with what each must be counted as.
const QUESTIONS: [(&str, &str, Expected); 16] = [
    ("90011510185", "2026-01-01", Ok(None)),
    ("90011510383", "2026-01-01", Ok(Some("NIET_AANGEMELD"))),
    ("91022010556", "2026-01-01", Ok(None)),
    ("91022010754", "2026-01-01", Ok(Some("GEEN_CONTRACT"))),
    ("92032510927", "2026-01-01", Ok(None)),
    (
        "92032511125",
        "2026-01-01",
        Ok(Some("ONVOLDOENDE_AANWEZIG")),
    ),
    (
        "93041011514",
        "2026-01-01",
        Ok(Some("NIET_INGESCHREVEN_ARBEIDSBEMIDDELING")),
    ),
    (
        "94050511991",
        "2026-01-01",
        Ok(Some("DOELSTELLINGEN_NIET_BEHAALD")),
    ),
    ("95063012146", "2026-01-01", Ok(None)),
    (
        "95063012344",
        "2026-01-01",
        Ok(Some("BRUSSELS_ATTEST_ONTBREEKT")),
    ),
    ("96071412565", "2026-01-01", Ok(None)),
    // Not in the snapshot: answered as not subject.
    ("97081812768", "2026-01-01", Ok(None)),
    // Check digits wrong.
    ("90011510186", "2026-01-01", Err("30001")),
    ("90011510185", "2026-13-01", Err("30002")),
    // Later than the snapshot can speak for (extracted 2026-11-01, 31 days).
    ("90011510383", "2027-06-01", Err("30003")),
    // Before the earliest regime (2014-01-01).
    ("91022010754", "2010-01-01", Err("30004")),
];

/// The samples of an exposition: series (name and labels as rendered) → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(server: &Server) -> String {
    let response = crate::support::get(server.ops_url("/metrics")).expect("scrape /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content type {content_type}"
    );
    response.text().expect("exposition text")
}

fn promtool_check_metrics(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool not found: run `bash scripts/setup/prometheus.sh` (CI runs every \
             scripts/setup/*.sh before cargo test)"
        ),
        Err(err) => panic!("cannot run promtool: {err}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition to promtool");
    let output = child.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The counters' deltas the traffic of this test must cause.
#[derive(Default)]
struct Tally {
    series: BTreeMap<String, f64>,
}

impl Tally {
    fn add(&mut self, series: String) {
        *self.series.entry(series).or_default() += 1.0;
    }

    /// Every question here asks by date, so under the demo protocol's `care-budget` purpose,
    /// unless it is refused before its form is read (30001, 30002: purpose `none`).
    fn question(&mut self, expected: Expected) {
        const P: &str = "care-budget";
        match expected {
            Ok(None) => self.add(format!(
                r#"kbi_questions_total{{purpose="{P}",reason="none",result="OK"}}"#
            )),
            Ok(Some(reason)) => self.add(format!(
                r#"kbi_questions_total{{purpose="{P}",reason="{reason}",result="NOK"}}"#
            )),
            Err(code) => {
                let purpose = if matches!(code, "30001" | "30002") {
                    "none"
                } else {
                    P
                };
                self.add(format!(
                    r#"kbi_questions_total{{purpose="{purpose}",reason="none",result="ERROR"}}"#
                ));
                self.error(code);
            }
        }
    }

    fn error(&mut self, code: &str) {
        self.add(format!(r#"kbi_errors_total{{code="{code}"}}"#));
    }

    fn request(&mut self, door: &str, outcome: &str) {
        self.add(format!(
            r#"kbi_requests_total{{door="{door}",outcome="{outcome}"}}"#
        ));
        self.add(format!(
            r#"kbi_request_duration_seconds_count{{door="{door}"}}"#
        ));
    }
}

#[test]
fn metrics_count_exactly_the_traffic_of_every_door() {
    let server = start(&crate::support::manifest_dir().join("data/demo-snapshot.jsonl"));
    let client = crate::support::http();
    let before = samples(&scrape(&server));
    let mut tally = Tally::default();

    // REST, one question per request: answers are 200, refused questions 400 with their code.
    for (insz, date, expected) in QUESTIONS {
        let response = client
            .get(server.url(&format!("/v1/integration-obligation/{insz}?date={date}")))
            .send()
            .expect("REST answers");
        let status = response.status().as_u16();
        let outcome = if expected.is_ok() {
            assert_eq!(status, 200, "{insz} {date}");
            "ok"
        } else {
            assert_eq!(status, 400, "{insz} {date}");
            "client_error"
        };
        tally.question(expected);
        tally.request("rest", outcome);
    }

    // REST batch: every question in one request, answered 200 with per-question errors.
    let questions: Vec<serde_json::Value> = QUESTIONS
        .iter()
        .map(|(insz, date, _)| serde_json::json!({"insz": insz, "date": date}))
        .collect();
    let response = client
        .post(server.url("/v1/integration-obligation:batch"))
        .json(&serde_json::json!({ "questions": questions }))
        .send()
        .expect("REST batch answers");
    assert_eq!(response.status().as_u16(), 200);
    for (_, _, expected) in QUESTIONS {
        tally.question(expected);
    }
    tally.request("rest_batch", "ok");

    // SOAP: every question in one request, then one refused as a whole (30012) and one Fault.
    let soap_questions: Vec<Q> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, (insz, date, _))| Q::date(&format!("q-{i}"), insz, date))
        .collect();
    let post_soap = |body: String| {
        client
            .post(server.url(SOAP_PATH))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .expect("SOAP answers")
            .status()
            .as_u16()
    };
    assert_eq!(post_soap(request(&soap_questions)), 200);
    for (_, _, expected) in QUESTIONS {
        tally.question(expected);
    }
    tally.request("soap", "ok");

    let wrong_version =
        CONTEXT.replace("<Versie>01.00.0000</Versie>", "<Versie>09.00.0000</Versie>");
    assert_eq!(
        post_soap(request_with(&wrong_version, &soap_questions[..2])),
        200
    );
    tally.error("30012");
    tally.request("soap", "client_error");

    assert_eq!(post_soap("this is not XML".to_string()), 500);
    tally.request("soap", "client_error");

    let text = scrape(&server);
    promtool_check_metrics(&text);
    let after = samples(&text);

    // Every counter of questions, errors and requests moved by exactly what was sent; the ones
    // not named in the tally did not move at all.
    let counted = |series: &str| {
        series.starts_with("kbi_questions_total")
            || series.starts_with("kbi_errors_total")
            || series.starts_with("kbi_requests_total")
            || series.starts_with("kbi_request_duration_seconds_count")
    };
    let mut mismatches = Vec::new();
    for (series, value) in after.iter().filter(|(s, _)| counted(s)) {
        let delta = value - before.get(series).copied().unwrap_or(0.0);
        let expected = tally.series.get(series).copied().unwrap_or(0.0);
        if delta != expected {
            mismatches.push(format!("{series}: moved {delta}, expected {expected}"));
        }
    }
    for series in tally.series.keys() {
        if !after.contains_key(series) {
            mismatches.push(format!("{series}: not exported"));
        }
    }
    assert!(mismatches.is_empty(), "{}\n\n{text}", mismatches.join("\n"));

    // The two canonical SOAP bodies (answered, and refused for their context) took the fast
    // reader; the one that is not XML went to the hardened parser.
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(-1.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert_eq!(
        moved(r#"kbi_soap_fast_path_total{outcome="taken"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(
        moved(r#"kbi_soap_fast_path_total{outcome="deferred"}"#),
        1.0,
        "{text}"
    );

    // The snapshot in use and readiness are exported.
    assert_eq!(
        after
            .get(r#"kbi_snapshot_info{rule_set="kbi-rules-2022.2",snapshot_id="demo-2026-11-01"}"#),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(after.get("kbi_snapshot_persons"), Some(&300.0));
    assert!(after
        .get("kbi_snapshot_age_seconds")
        .is_some_and(|age| *age > 0.0));
    assert!(
        after
            .get(r#"kbi_snapshot_reloads_total{outcome="ok",source="file"}"#)
            .is_some_and(|n| *n >= 1.0),
        "{text}"
    );
    assert!(after.contains_key("process_cpu_seconds_total"));

    // Never an INSZ: not as asked, not with separators.
    for (insz, _, _) in QUESTIONS {
        let formatted = format!(
            "{}.{}.{}-{}.{}",
            &insz[0..2],
            &insz[2..4],
            &insz[4..6],
            &insz[6..9],
            &insz[9..11]
        );
        assert!(!text.contains(insz), "an INSZ in the exposition");
        assert!(!text.contains(&formatted), "an INSZ in the exposition");
    }
}
