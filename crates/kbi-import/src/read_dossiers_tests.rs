//! [`crate::read_dossiers`]: the export's reading gives the import's persons and events, its
//! report, and its refusals.

use std::path::{Path, PathBuf};

use kbi_core::io::Silent;

use crate::codes::Codes;
use crate::generate::{write_dossiers, DossierOptions};
use crate::golden_tests::{import_files, normalised, FIXTURES};
use crate::{read_dossiers, DossierRead, KeptPerson, Report, RunOptions};

fn read_all(inputs: &[PathBuf], workers: usize) -> (Report, Vec<KeptPerson>) {
    let mut kept = Vec::new();
    let report = read_dossiers(
        &DossierRead {
            inputs: inputs.to_vec(),
            codes: Codes::shipped(),
        },
        &RunOptions {
            workers,
            ..RunOptions::default()
        },
        &Silent,
        &mut |p| kept.push(p),
    )
    .unwrap();
    (report, kept)
}

/// The report without what only an import has (its output, its snapshot id, the time).
fn comparable(report: &Report) -> serde_json::Value {
    let mut value = normalised(report);
    value.as_object_mut().unwrap().remove("snapshot_id");
    value
}

/// The person lines of `kept` as an import writes them.
fn lines(kept: &[KeptPerson]) -> String {
    let mut out = Vec::new();
    for p in kept {
        crate::write_person_line(&mut out, p.insz, &p.events);
    }
    String::from_utf8(out).unwrap()
}

/// The snapshot's person lines (without the header).
fn body(snapshot: &str) -> &str {
    snapshot.split_once('\n').unwrap().1
}

/// Imports and reads `inputs` both ways; asserts the same report and the same persons and
/// events (in order); returns the report and what `each` got.
fn both_ways(inputs: &[PathBuf], workers: usize) -> (Report, Vec<KeptPerson>) {
    let (import, snapshot) = import_files(inputs, workers);
    let (report, kept) = read_all(inputs, workers);
    assert_eq!(comparable(&import), comparable(&report));
    assert_eq!(report.persons, kept.len() as u64);
    if let Some(snapshot) = snapshot {
        assert_eq!(body(&snapshot), lines(&kept));
    }
    for p in &kept {
        let d = &p.dossier;
        assert!(d.profile.is_some(), "read in profile mode");
        assert_eq!(d.insz, Some(Some(p.insz.to_string())));
    }
    (report, kept)
}

fn generated(dir: &Path, persons: u64, seed: u64) -> Vec<PathBuf> {
    write_dossiers(
        &DossierOptions {
            persons,
            seed,
            extracted_at: "2026-11-01T02:00:00Z".parse().unwrap(),
            snapshot_id: None,
            per_file: 70,
        },
        dir,
    )
    .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_example_dossiers_give_the_imports_report_in_profile_mode() {
    for fixture in ["valid-88021412358.xml", "invalid-batch.xml"] {
        let input = PathBuf::from(FIXTURES).join(fixture);
        for workers in [1, 3] {
            let (report, kept) = both_ways(std::slice::from_ref(&input), workers);
            if fixture.starts_with("valid") {
                assert!(report.ok);
                assert_eq!(kept.len(), 1);
            } else {
                assert!(!report.ok);
                assert_eq!(report.errors_total, 3);
                assert!(
                    kept.is_empty(),
                    "the first reply has an ERROR: nobody after it"
                );
            }
        }
    }
}

#[test]
fn generated_dossiers_give_the_imports_persons_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let files = generated(dir.path(), 400, 11);
    assert!(files.len() > 4);
    let expected = std::fs::read_to_string(dir.path().join("expected.jsonl")).unwrap();
    for workers in [1, 3] {
        let (report, kept) = both_ways(&files, workers);
        assert!(report.ok, "{}", report.render());
        assert!(kept.len() > 300);
        // The same persons and events as the generator meant, in INSZ order.
        assert_eq!(lines(&kept), body(&expected));
        let mut insz: Vec<u64> = kept.iter().map(|p| p.insz.value()).collect();
        let n = insz.len();
        insz.dedup();
        assert_eq!(insz.len(), n);
    }
}

#[test]
fn a_second_dossier_is_refused_and_never_handed_on() {
    let dir = tempfile::tempdir().unwrap();
    let files = generated(dir.path(), 150, 5);
    // The second file again, after the last.
    let mut inputs = files.clone();
    inputs.push(files[1].clone());
    let (report, kept) = both_ways(&inputs, 2);
    assert!(!report.ok);
    assert!(report.errors.iter().all(|e| e.row == "M23"));
    assert!(report.errors_total > 0);
    assert_eq!(
        report.errors[0].file_number,
        inputs.len() as u64,
        "the later dossier is named"
    );
    // Everyone before the first ERROR, once: the files up to the repeated one.
    let (_, first) = read_all(&files, 1);
    assert_eq!(lines(&kept), lines(&first));
}

#[test]
fn refused_replies_refuse_the_reading_as_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let files = generated(dir.path(), 80, 3);
    let head = r#"<web:GeefDossierKBIResponse xmlns:web="http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie></Context>"#;
    let throttled = format!("{head}<Uitzonderingen><Uitzondering><Identificatie>99996</Identificatie><Oorsprong>MAGDA</Oorsprong><Type>FOUT</Type><Diagnose>Te veel gelijktijdige bevragingen</Diagnose></Uitzondering></Uitzonderingen></Repliek></web:GeefDossierKBIResponse>");
    let other = "<GeefPersoonResponse><Repliek><Context><Naam>GeefPersoon</Naam></Context></Repliek></GeefPersoonResponse>".to_string();
    let dtd =
        format!("<!DOCTYPE x [<!ENTITY e \"y\">]>{head}</Repliek></web:GeefDossierKBIResponse>");
    for (name, text, row) in [
        ("throttled.xml", throttled, "M22"),
        ("other.xml", other, "XML"),
        ("dtd.xml", dtd, "XML"),
        ("empty.xml", String::new(), "XML"),
    ] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, text).unwrap();
        let inputs = vec![files[0].clone(), bad, files[1].clone()];
        let (report, kept) = both_ways(&inputs, 2);
        assert!(!report.ok, "{name}");
        assert_eq!(report.errors[0].row, row, "{name}: {:?}", report.errors);
        assert_eq!(report.errors[0].file_number, 2, "{name}");
        // The first file's persons were handed on before the ERROR; the caller writes nothing.
        let (_, first) = read_all(&files[..1], 1);
        assert_eq!(lines(&kept), lines(&first), "{name}");
    }
}
