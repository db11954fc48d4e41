//! schemathesis (PyPI) against the served `/openapi.json` of the real service: no server errors,
//! every status code, content type, header and body as documented, schema-violating requests
//! rejected. Needs `scripts/setup/schemathesis.sh` (CI runs every setup script first).
//!
//! `positive_data_acceptance` is excluded on purpose: JSON Schema cannot express INSZ check
//! digits or calendar dates, so a schema-valid `85073003329` is rightly refused with 400/30001.

use std::process::Command;

use crate::support::manifest_dir;
use crate::support::server::start;

#[test]
fn schemathesis_finds_no_failure_against_the_openapi_document() {
    let tool = manifest_dir().join("target/schemathesis-venv/bin/schemathesis");
    assert!(
        tool.exists(),
        "schemathesis is not installed: run `bash scripts/setup/schemathesis.sh`"
    );
    let server = start(&manifest_dir().join("data/demo-snapshot.jsonl"));
    let reports = tempfile::tempdir().unwrap();
    let output = Command::new(&tool)
        .current_dir(reports.path())
        .arg("--config-file")
        .arg(manifest_dir().join("api/schemathesis.toml"))
        .args([
            "run",
            &server.url("/openapi.json"),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "100",
            "--seed",
            "20261125",
            "--workers",
            "2",
            "--no-color",
            // The development profile identifies REST callers by this header.
            "--header",
            "X-Client-Id: demo",
        ])
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Failing examples can be megabytes: keep the report's end, where the summary is.
    let tail = String::from_utf8_lossy(&output.stdout[output.stdout.len().saturating_sub(6000)..]);
    assert!(
        output.status.success(),
        "schemathesis found failures (report tail):\n{tail}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It really tested both operations (a run that tests nothing also exits 0).
    assert!(stdout.contains("Tested: 2"), "{stdout}");
    assert!(stdout.contains("passed"), "{stdout}");
}
