//! The demo snapshot shipped in `data/` answers as the README says, and is exactly what the
//! generator makes (so it can be rebuilt rather than hand-edited).

use std::path::Path;
use std::sync::Arc;

use kbi_core::domain::{Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::{
    default_extracted_at, generate, GenerateOptions, SHOWCASE, SHOWCASE_ABSENT, SHOWCASE_DATE,
};
use kbi_core::snapshot::load_path;

#[test]
fn showcase_persons_answer_as_documented() {
    let snapshot = load_path(
        Path::new("data/demo-snapshot.jsonl"),
        Arc::new(RuleSet::shipped()),
        &Silent,
    )
    .unwrap();
    let readme = std::fs::read_to_string("README.md").unwrap();
    for case in SHOWCASE {
        let q = Question::parse(case.insz, Some(SHOWCASE_DATE), None).unwrap();
        let a = snapshot.advise(&q).unwrap();
        assert!(a.found, "{} is in the demo snapshot", case.insz);
        assert_eq!(a.subject, case.subject, "{}: {}", case.insz, case.shows);
        assert_eq!(
            a.reason.map(|r| r.code()),
            case.reason,
            "{}: {}",
            case.insz,
            case.shows
        );
        assert!(readme.contains(case.insz), "README lists {}", case.insz);
    }
    let q = Question::parse(SHOWCASE_ABSENT, Some(SHOWCASE_DATE), None).unwrap();
    let a = snapshot.advise(&q).unwrap();
    assert!(!a.found && !a.subject && a.is_ok());
    assert!(readme.contains(SHOWCASE_ABSENT));
    // Every reason code has a NOK example.
    for reason in kbi_core::domain::ReasonCode::ALL {
        assert!(
            SHOWCASE.iter().any(|c| c.reason == Some(reason.code())),
            "{reason:?}"
        );
    }
}

#[test]
fn demo_snapshot_is_reproducible_from_the_generator() {
    let options = GenerateOptions {
        persons: 300,
        seed: 2026,
        extracted_at: default_extracted_at(),
        snapshot_id: Some("demo-2026-11-01".into()),
        with_examples: true,
    };
    let mut generated = Vec::new();
    generate(&options, &mut generated).unwrap();
    let shipped = std::fs::read("data/demo-snapshot.jsonl").unwrap();
    assert!(
        generated == shipped,
        "data/demo-snapshot.jsonl differs from `kbi-advice snapshot generate --persons 300 --seed 2026 \
         --with-examples --snapshot-id demo-2026-11-01`"
    );
}
