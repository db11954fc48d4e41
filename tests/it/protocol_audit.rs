//! Audit records under protocols (`security-and-audit.md`): every record carries `protocol` and
//! `purpose`; `audit verify` passes over a log written before protocols existed
//! (`tests/fixtures/audit-before-protocols`, written by the previous version) and continued by
//! this one; `audit search` shows the new members.

use std::path::Path;
use std::process::Command;

use crate::support::server::start_with;
use serde_json::Value;

const NOK: &str = "90011510383";
const FIXTURE: &str = "tests/fixtures/audit-before-protocols";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
}

fn records(dir: &Path) -> Vec<Value> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let text = std::fs::read(&name).unwrap();
        for line in text.split(|&b| b == b'\n') {
            let line: Vec<u8> = line.iter().copied().filter(|&b| b != 0).collect();
            if !line.is_empty() {
                out.push(serde_json::from_slice(&line).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_log_written_before_protocols_verifies_and_continues_with_protocol_and_purpose() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root.join(FIXTURE)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    // The old log verifies as it is.
    let verify = bin()
        .args(["audit", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let before = records(dir.path());
    assert_eq!(before.len(), 3);
    assert!(before
        .iter()
        .all(|r| r.get("protocol").is_none() && r.get("purpose").is_none()));

    // This version continues the chain.
    let protocols = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("config/protocols/demo.toml"),
        protocols.path().join("demo.toml"),
    )
    .unwrap();
    std::fs::write(
        protocols.path().join("narrow.toml"),
        r#"id = "narrow"
title = "t"
sender = "s"
recipient = "r"
legal_basis = ["x"]
term = { from = 2021-10-01 }
[[questions]]
purpose = "care-budget"
asks = "date"
reference_dates = { from = 2022-01-01 }
"#,
    )
    .unwrap();
    let registry = dir.path().join("clients.toml");
    std::fs::write(
        &registry,
        r#"
[[client]]
id = "demo"
afzenders = ["demo.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "demo"
[[client]]
id = "narrow"
afzenders = ["narrow.test"]
hoedanigheden = ["9999"]
operations = ["single"]
protocol = "narrow"
"#,
    )
    .unwrap();
    {
        let server = start_with(
            &root.join("data/demo-snapshot.jsonl"),
            &[],
            &[
                ("KBI_ADVICE__AUDIT__DIR", dir.path().to_str().unwrap()),
                (
                    "KBI_ADVICE__PROTOCOLS__DIR",
                    protocols.path().to_str().unwrap(),
                ),
                ("KBI_ADVICE__CLIENTS__REGISTRY", registry.to_str().unwrap()),
                // The fixture's segment is not preallocated; neither are the new ones.
                ("KBI_ADVICE__AUDIT__PREALLOCATE", "false"),
            ],
        );
        let client = reqwest::blocking::Client::new();
        for (who, query) in [
            ("demo", "date=2026-01-01"),
            ("demo", "premium_year=2027"),
            ("narrow", "date=2026-01-01"),
            ("narrow", "premium_year=2027"), // no such purpose in `narrow`: 30005
            ("narrow", "date=2021-06-01"),   // outside the window: 30005
        ] {
            let status = client
                .get(server.url(&format!("/v1/integration-obligation/{NOK}?{query}")))
                .header("x-client-id", who)
                .send()
                .unwrap()
                .status();
            assert!(status.is_success() || status.as_u16() == 403, "{status}");
        }
    }
    let all = records(dir.path());
    assert_eq!(all.len(), 8, "{all:#?}");
    let new: Vec<(&str, &str, Value)> = all[3..]
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap(),
                r["client_id"].as_str().unwrap(),
                r["purpose"].clone(),
            )
        })
        .collect();
    assert_eq!(
        new,
        vec![
            ("demo", "demo", Value::from("care-budget")),
            ("demo", "demo", Value::from("reduced-premium")),
            ("narrow", "narrow", Value::from("care-budget")),
            ("narrow", "narrow", Value::Null),
            ("narrow", "narrow", Value::from("care-budget")),
        ]
    );
    assert_eq!(all[6]["outcome"]["error"], "30005");
    assert_eq!(all[7]["outcome"]["error"], "30005");

    // The chain verifies across the change (the old checkpoint still anchors the old records).
    let verify = bin()
        .args(["audit", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(report.contains("8 records"), "{report}");

    // `audit search` shows protocol and purpose, and `-` for the old records.
    let search = bin()
        .args(["audit", "search", "--insz", NOK, "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&search.stdout);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("protocol") && header.contains("purpose"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("narrow") && l.contains("ERROR 30005")),
        "{table}"
    );
    let json = bin()
        .args([
            "audit", "search", "--format", "json", "--insz", NOK, "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|r| r["purpose"] == "reduced-premium"));
}
