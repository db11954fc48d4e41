//! A second SOAP stack: node-soap (npm `soap` 1.x, installed by `scripts/setup/node-soap.sh`)
//! builds its client from the served `?wsdl` alone and calls the real service; every answer must
//! equal the core's answer for the same question. Fails if node-soap cannot use the WSDL.

use std::process::Command;
use std::sync::Arc;

use crate::support::manifest_dir;
use crate::support::server::start;
use kbi_core::domain::{Question, RuleSet};
use serde_json::{json, Value};

const PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

#[test]
fn node_soap_client_built_from_the_wsdl_agrees_with_the_core() {
    let dir = manifest_dir().join("target/node-soap");
    assert!(
        dir.join("node_modules/soap/package.json").exists(),
        "node-soap is not installed: run `bash scripts/setup/node-soap.sh`"
    );
    let snapshot = manifest_dir().join("data/demo-snapshot.jsonl");
    let server = start(&snapshot);
    let questions: Vec<(&str, Option<&str>, Option<&str>)> = vec![
        ("90011510185", Some("2026-01-01"), None),
        ("90011510383", Some("2026-01-01"), None),
        ("91022010754", Some("2026-01-01"), None),
        ("92032511125", Some("2026-01-01"), None),
        ("93041011514", Some("2026-01-01"), None),
        ("94050511991", Some("2026-01-01"), None),
        ("95063012344", Some("2026-01-01"), None),
        ("96071412565", Some("2026-01-01"), None),
        ("97081812768", Some("2026-01-01"), None),
        ("90011510383", None, Some("2027")),
        ("90011510186", Some("2026-01-01"), None),
    ];
    let cases: Vec<Value> = questions
        .iter()
        .enumerate()
        .map(|(i, (insz, date, year))| {
            json!({"referte": format!("n{i}"), "insz": insz, "date": date, "year": year})
        })
        .collect();
    let output = Command::new("node")
        .arg(manifest_dir().join("tests/node_soap/call.js"))
        .arg(server.url(&format!("{PATH}?wsdl")))
        .arg(Value::Array(cases).to_string())
        .env("NODE_SOAP_DIR", &dir)
        .output()
        .expect("node runs (Node.js on the machine)");
    assert!(
        output.status.success(),
        "node-soap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_slice(&output.stdout).expect("JSON from call.js");
    assert_eq!(reply["ontvanger"], "node-0001", "caller's Referte echoed");
    let rows = reply["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), questions.len());

    let core = kbi_core::snapshot::load_path(
        &snapshot,
        Arc::new(RuleSet::shipped()),
        &kbi_core::io::Silent,
    )
    .unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for (i, ((insz, date, year), row)) in questions.iter().zip(rows).enumerate() {
        assert_eq!(row["referte"], format!("n{i}"));
        match Question::parse(insz, *date, *year).map(|q| core.advise(&q)) {
            Ok(Ok(advice)) => {
                assert_eq!(row["result"], advice.result(), "question {i}");
                assert_eq!(row["subject"], advice.subject, "question {i}");
                assert_eq!(row["compliant"], advice.compliant, "question {i}");
                let reason = advice.reason.filter(|_| !advice.is_ok()).map(|r| r.code());
                assert_eq!(row["reason"].as_str(), reason, "question {i}");
                assert_eq!(row["snapshot_id"], "demo-2026-11-01");
                kinds.insert(advice.result().to_string());
            }
            Ok(Err(refusal)) => assert_eq!(row["error"], refusal.code.as_str()),
            Err(code) => {
                assert_eq!(row["error"], code.as_str(), "question {i}");
                kinds.insert(code.as_str().to_string());
            }
        }
    }
    assert_eq!(kinds.len(), 3, "OK, NOK and an error expected: {kinds:?}");
}
