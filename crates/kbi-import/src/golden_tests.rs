//! The import of the shipped example dossiers, report and snapshot, against golden files taken
//! before the reader learnt its profile mode (issue 22): an import must not change in any byte.
//! `KBI_BLESS=1 cargo test -p kbi-import golden` rewrites them (only for a reviewed change).

use std::path::{Path, PathBuf};

use kbi_core::io::Silent;

use crate::codes::Codes;
use crate::{import_with, ImportOptions, RunOptions};

/// Relative to the crate (the test's working directory), so the report names it stably.
pub(crate) const FIXTURES: &str = "../../tests/fixtures/kbi-dossier";
const GOLDEN: &str = "testdata";

/// A report as JSON without what depends on the run (time, output path).
pub(crate) fn normalised(report: &crate::Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap();
    let map = value.as_object_mut().unwrap();
    map.remove("seconds");
    map.remove("out");
    value
}

/// Imports `inputs` with `workers` threads: the report and, when written, the snapshot.
pub(crate) fn import_files(inputs: &[PathBuf], workers: usize) -> (crate::Report, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.jsonl");
    let options = ImportOptions {
        inputs: inputs.to_vec(),
        out: out.clone(),
        snapshot_id: "golden".into(),
        extracted_at: "2024-11-30T02:00:00Z".parse().unwrap(),
        employment_service: None,
        codes: Codes::shipped(),
    };
    let run = RunOptions {
        workers,
        ..RunOptions::default()
    };
    let report = import_with(&options, &Silent, &run).unwrap();
    let snapshot = report.ok.then(|| std::fs::read_to_string(&out).unwrap());
    (report, snapshot)
}

fn check(name: &str, actual: &str) {
    let path = Path::new(GOLDEN).join(name);
    if std::env::var_os("KBI_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{name} changed");
}

#[test]
fn golden_import_of_the_example_dossiers_is_unchanged() {
    for (fixture, name) in [
        ("valid-88021412358.xml", "valid"),
        ("invalid-batch.xml", "invalid"),
    ] {
        for workers in [1, 3] {
            let input = PathBuf::from(FIXTURES).join(fixture);
            let (report, snapshot) = import_files(&[input.clone(), input.clone()], workers);
            check(
                &format!("golden-{name}-twice-report.json"),
                &serde_json::to_string_pretty(&normalised(&report)).unwrap(),
            );
            assert_eq!(snapshot, None, "a second dossier refuses the import");
            let (report, snapshot) = import_files(&[input], workers);
            check(
                &format!("golden-{name}-report.json"),
                &serde_json::to_string_pretty(&normalised(&report)).unwrap(),
            );
            check(
                &format!("golden-{name}-snapshot.jsonl"),
                snapshot.as_deref().unwrap_or("(refused)\n"),
            );
        }
    }
}
