//! Round trip, property-tested: generated persons → `generate --format kbi-dossier-01.00`
//! (batch files of replies) → `import` → the same events and the same answers as the generated
//! snapshot (`expected.jsonl`) for every person, on random dates. Through the library (the
//! binary's `generate` and `import` are thin wrappers; tests/it/kbi_import.rs runs the binary).

use std::path::Path;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;

use kbi_core::domain::{CompiledSnapshot, Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::default_extracted_at;
use kbi_core::snapshot::load_path;
use kbi_import::codes::Codes;
use kbi_import::generate::{persons, write_dossiers, DossierOptions};
use kbi_import::{import, ImportOptions};

fn answer(snapshot: &CompiledSnapshot, insz: &str, date: NaiveDate) -> String {
    let question = Question::parse(insz, Some(&date.to_string()), None).unwrap();
    match snapshot.advise(&question) {
        Ok(a) => format!(
            "{} {} {:?} found={}",
            a.subject, a.compliant, a.reason, a.found
        ),
        Err(r) => format!("refused {:?}", r.code),
    }
}

/// The person lines as `insz → sorted event texts`.
fn events_by_person(path: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut events: Vec<String> = v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.to_string())
                .collect();
            events.sort();
            (v["insz"].as_str().unwrap().to_string(), events)
        })
        .collect()
}

fn round_trip(seed: u64, count: u64, per_file: u64, offsets: &[u32]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let replies = dir.path().join("replies");
    let options = DossierOptions {
        persons: count,
        seed,
        extracted_at: default_extracted_at(),
        snapshot_id: None,
        per_file,
    };
    let files = write_dossiers(&options, &replies).unwrap();
    prop_assert_eq!(files, count.div_ceil(per_file));
    let out = dir.path().join("imported.jsonl.zst");
    let report = import(
        &ImportOptions {
            inputs: vec![replies.clone()],
            out: out.clone(),
            snapshot_id: "round-trip".into(),
            extracted_at: default_extracted_at(),
            employment_service: None,
            codes: Codes::shipped(),
        },
        &Silent,
    )
    .unwrap();
    prop_assert!(report.ok, "{}", report.render());
    let generated = persons(&options);
    let in_register = generated.iter().filter(|p| p.events.is_some()).count() as u64;
    prop_assert_eq!(report.persons, in_register);
    prop_assert_eq!(report.not_found, count - in_register);

    // Same events, person by person (same-day order aside).
    let expected_path = replies.join("expected.jsonl");
    let unzipped = dir.path().join("imported.jsonl");
    std::fs::write(
        &unzipped,
        zstd::decode_all(std::fs::File::open(&out).unwrap()).unwrap(),
    )
    .unwrap();
    prop_assert_eq!(
        events_by_person(&expected_path),
        events_by_person(&unzipped)
    );

    // Same answers for every person (and for persons absent from both) on random dates.
    let rules = Arc::new(RuleSet::shipped());
    let expected = load_path(&expected_path, rules.clone(), &Silent).unwrap();
    let imported = load_path(&out, rules, &Silent).unwrap();
    let first = NaiveDate::from_ymd_opt(2013, 12, 1).unwrap();
    for (i, person) in generated.iter().enumerate() {
        let insz = person.insz.to_string();
        for k in 0..3 {
            let offset = offsets[(i * 3 + k) % offsets.len()];
            let date = first + Days::new(u64::from(offset));
            let (a, b) = (
                answer(&expected, &insz, date),
                answer(&imported, &insz, date),
            );
            prop_assert_eq!(&a, &b, "person {} on {}", i, date);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn generated_dossiers_import_to_the_same_answers(
        seed in any::<u64>(),
        count in 1u64..400,
        per_file in 1u64..150,
        offsets in proptest::collection::vec(0u32..4750, 30),
    ) {
        round_trip(seed, count, per_file, &offsets)?;
    }
}

#[test]
fn a_larger_fixed_round_trip() {
    let offsets: Vec<u32> = (0..97).map(|i| i * 49).collect();
    round_trip(7, 3000, 1000, &offsets).unwrap();
}
