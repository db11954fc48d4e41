//! Driving the Python SOAP client zeep (from `target/test-venv`, installed by
//! `scripts/setup/python-zeep.sh`) against a served WSDL, and the `check` answers to compare with.

use std::path::PathBuf;
use std::process::Command;

use super::manifest_dir;

/// One question for zeep: a date or a premium year.
pub struct ZeepCase {
    pub referte: String,
    pub insz: String,
    pub date: Option<String>,
    pub year: Option<String>,
}

/// The client script: builds the client from the WSDL URL alone (no local files, no hand-written
/// XML), asks all cases in one call, prints one JSON row per answer.
const SCRIPT: &str = r#"
import json, sys
from zeep import Client, Settings

wsdl, cases = sys.argv[1], json.loads(sys.argv[2])
client = Client(wsdl, settings=Settings(strict=True))
vragen = []
for case in cases:
    criteria = {"INSZ": case["insz"]}
    if case.get("date") is not None:
        criteria["Referentiedatum"] = case["date"]
    else:
        criteria["Premiejaar"] = case["year"]
    vragen.append({"Referte": case["referte"], "Inhoud": {"Criteria": criteria}})
reply = client.service.GeefAdviesInburgeringsplicht(Verzoek={
    "Context": {
        "Naam": "GeefAdviesInburgeringsplicht",
        "Versie": "01.00.0000",
        "Bericht": {
            "Type": "VRAAG",
            "Tijdstip": {"Datum": "2026-11-02", "Tijd": "09:15:00.000"},
            "Afzender": {"Identificatie": "demo.kbi-advice", "Referte": "zeep-0001",
                         "Hoedanigheid": "9999"},
        },
    },
    "Vragen": {"Vraag": vragen},
})
repliek = getattr(reply, "Repliek", reply)
rows = []
for antwoord in repliek.Antwoorden.Antwoord:
    row = {"referte": antwoord.Referte}
    if antwoord.Uitzonderingen is not None:
        row["error"] = antwoord.Uitzonderingen.Uitzondering[0].Identificatie
    else:
        advies = antwoord.Inhoud.Advies
        row.update({
            "insz": advies.INSZ,
            "reference_date": advies.Referentiedatum,
            "subject": advies.ValtOnderInburgeringsplicht,
            "compliant": advies.VoldoetAanInburgeringsplicht,
            "result": advies.Resultaat,
            "reason": advies.Reden.Code if advies.Reden is not None else None,
            "snapshot_id": advies.Bron.SnapshotId,
            "extracted_at": advies.Bron.Extractiedatum.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rule_set": advies.Bron.Regelset,
        })
    rows.append(row)
print(json.dumps({"ontvanger": repliek.Context.Bericht.Ontvanger.Referte, "rows": rows}))
"#;

fn python() -> PathBuf {
    let python = manifest_dir().join("target/test-venv/bin/python");
    let has_zeep = Command::new(&python)
        .args(["-c", "import zeep"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        has_zeep,
        "Python zeep not found in target/test-venv: run scripts/setup/python-zeep.sh"
    );
    python
}

/// Asks `cases` through zeep built from `wsdl_url`; returns the printed JSON.
pub fn ask(wsdl_url: &str, cases: &[ZeepCase]) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "referte": c.referte, "insz": c.insz, "date": c.date, "year": c.year
            })
        })
        .collect();
    let output = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(wsdl_url)
        .arg(serde_json::Value::Array(cases).to_string())
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "zeep client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("zeep script prints JSON")
}

/// The JSON that `kbi-advice check` prints for a question (an answer or a problem document).
pub fn check(
    snapshot: &std::path::Path,
    insz: &str,
    date: Option<&str>,
    year: Option<&str>,
) -> serde_json::Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbi-advice"));
    command
        .arg("check")
        .arg("--snapshot")
        .arg(snapshot)
        .arg("--insz")
        .arg(insz);
    if let Some(date) = date {
        command.arg("--date").arg(date);
    }
    if let Some(year) = year {
        command.arg("--premium-year").arg(year);
    }
    let output = command.output().expect("check runs");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Asserts that zeep's row says what `check` says.
pub fn assert_same(row: &serde_json::Value, check: &serde_json::Value, what: &str) {
    if let Some(code) = check.get("code") {
        assert_eq!(row["error"], *code, "{what}: error code");
        return;
    }
    assert_eq!(row["insz"], check["insz"], "{what}: insz");
    assert_eq!(
        row["reference_date"], check["reference_date"],
        "{what}: date"
    );
    assert_eq!(row["subject"], check["subject"], "{what}: subject");
    assert_eq!(row["compliant"], check["compliant"], "{what}: compliant");
    assert_eq!(row["result"], check["result"], "{what}: result");
    let reason = check
        .get("reason")
        .map_or(serde_json::Value::Null, |r| r["code"].clone());
    assert_eq!(row["reason"], reason, "{what}: reason");
    assert_eq!(
        row["snapshot_id"], check["source"]["snapshot_id"],
        "{what}: snapshot"
    );
    assert_eq!(
        row["extracted_at"], check["source"]["extracted_at"],
        "{what}: extracted_at"
    );
    assert_eq!(
        row["rule_set"], check["source"]["rule_set"],
        "{what}: rule set"
    );
}

/// The demo cases of the README (2026-01-01), a premium year, and an invalid INSZ.
pub fn demo_cases() -> Vec<ZeepCase> {
    let mut cases: Vec<ZeepCase> = [
        "90011510185",
        "90011510383",
        "91022010754",
        "95063012344",
        "96071412565",
        "97081812768",
        "85073003329",
    ]
    .iter()
    .enumerate()
    .map(|(i, insz)| ZeepCase {
        referte: format!("zeep-{i}"),
        insz: insz.to_string(),
        date: Some("2026-01-01".into()),
        year: None,
    })
    .collect();
    cases.push(ZeepCase {
        referte: "zeep-premium".into(),
        insz: "90011510383".into(),
        date: None,
        year: Some("2026".into()),
    });
    cases
}
