//! The public example cases of the spec, as a table test, through the code path of `check`
//! (library) and through the `check` binary itself.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kbi_core::domain::{Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::load_path;
use kbi_wire::json::{AnswerJson, Problem};

struct Row {
    insz: String,
    date: String,
    subject: String,
    compliant: String,
    result: String,
    reason: String,
    error: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string("tests/fixtures/public-expected.csv").unwrap();
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
            assert_eq!(f.len(), 7, "malformed expected row {line:?}");
            Row {
                insz: f[0].into(),
                date: f[1].into(),
                subject: f[2].into(),
                compliant: f[3].into(),
                result: f[4].into(),
                reason: f[5].into(),
                error: f[6].into(),
            }
        })
        .collect();
    assert!(rows.len() >= 40, "the table lost rows");
    rows
}

/// Renders what the JSON says in the CSV's columns.
fn as_row(json: &serde_json::Value) -> [String; 5] {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    [
        text(&json["subject"]),
        text(&json["compliant"]),
        text(&json["result"]),
        text(&json["reason"]["code"]),
        text(&json["code"]),
    ]
}

#[test]
fn every_public_case_through_the_library() {
    let rules = Arc::new(RuleSet::shipped());
    let snapshot = load_path(
        Path::new("tests/fixtures/public-snapshot.jsonl"),
        rules.clone(),
        &Silent,
    )
    .unwrap();
    let mut failures = Vec::new();
    for row in rows() {
        let json = match Question::parse(&row.insz, Some(&row.date), None)
            .map_err(|code| kbi_core::domain::Refusal { code, found: None })
            .and_then(|q| snapshot.advise(&q))
        {
            Ok(advice) => {
                serde_json::to_value(AnswerJson::new(&advice, &snapshot.meta, &rules.version))
                    .unwrap()
            }
            Err(refusal) => serde_json::to_value(Problem::from_code(refusal.code)).unwrap(),
        };
        let expected = [
            &row.subject,
            &row.compliant,
            &row.result,
            &row.reason,
            &row.error,
        ]
        .map(|s| s.to_string());
        if as_row(&json) != expected {
            failures.push(format!(
                "{} on {}: expected {expected:?}, got {:?}",
                row.insz,
                row.date,
                as_row(&json)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_public_case_through_the_check_command() {
    let mut failures = Vec::new();
    for row in rows() {
        let output = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
            .args([
                "check",
                "--snapshot",
                "tests/fixtures/public-snapshot.jsonl",
            ])
            .args(["--insz", &row.insz, "--date", &row.date])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("check printed no JSON ({e}) for {}", row.insz));
        let expected_exit = if row.error.is_empty() { 0 } else { 1 };
        assert_eq!(
            output.status.code(),
            Some(expected_exit),
            "exit code for {}",
            row.insz
        );
        let expected = [
            &row.subject,
            &row.compliant,
            &row.result,
            &row.reason,
            &row.error,
        ]
        .map(|s| s.to_string());
        if as_row(&json) != expected {
            failures.push(format!(
                "{} on {}: got {:?}",
                row.insz,
                row.date,
                as_row(&json)
            ));
        }
        // Data minimisation: a reason only when NOK, and the source always on answers.
        if row.error.is_empty() {
            assert_eq!(
                json["reason"].is_object(),
                row.result == "NOK",
                "{}",
                row.insz
            );
            assert_eq!(json["source"]["snapshot_id"], "public-1");
            assert_eq!(json["source"]["extracted_at"], "2026-11-01T02:00:00Z");
            assert_eq!(json["insz"].as_str().map(str::len), Some(11));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
