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

fn text(s: &str) -> Option<crate::dossier::Text> {
    Some(Some(s.to_string()))
}

fn day(d: Option<chrono::NaiveDate>) -> Option<crate::dossier::Text> {
    d.map(|d| Some(d.to_string()))
}

#[test]
fn generated_profiles_are_read_back_as_drawn_with_a_realistic_mix() {
    use crate::dossier::{Beheerder, OnderdeelBesluit, Periode};
    use crate::generate::{persons, OFFICES};
    use std::collections::{BTreeMap, HashMap};

    let options = DossierOptions {
        persons: 2000,
        seed: 23,
        extracted_at: "2026-11-01T02:00:00Z".parse().unwrap(),
        snapshot_id: None,
        per_file: 500,
    };
    let drawn = persons(&options);
    let again = persons(&options);
    assert!(
        drawn
            .iter()
            .zip(&again)
            .all(|(a, b)| a.insz == b.insz && a.events == b.events && a.profile == b.profile),
        "deterministic from the seed"
    );
    let dir = tempfile::tempdir().unwrap();
    write_dossiers(&options, dir.path()).unwrap();
    let files: Vec<PathBuf> = (1..=4)
        .map(|i| dir.path().join(format!("batch-{i:05}.xml")))
        .collect();
    let (report, kept) = both_ways(&files, 2);
    assert!(report.ok, "{}", report.render());
    let by_insz: HashMap<u64, _> = drawn.iter().map(|p| (p.insz.value(), p)).collect();
    let mut mix: BTreeMap<String, u64> = BTreeMap::new();
    let mut count = |k: &str| *mix.entry(k.to_string()).or_insert(0) += 1;
    for person in &kept {
        let g = by_insz[&person.insz.value()].profile.as_ref().unwrap();
        let d = &person.dossier;
        let p = d.profile.as_deref().unwrap();
        assert_eq!(
            p.geboortedatum,
            g.geboortedatum.as_deref().map(|b| Some(b.to_string()))
        );
        assert_eq!(p.geslacht, g.geslacht.and_then(text));
        assert_eq!(p.hoogst_behaald_nt2, g.hoogst_behaald_nt2.and_then(text));
        let courses: Vec<Periode> = g
            .nt2_cursussen
            .iter()
            .map(|c| match c {
                None => Periode::default(),
                Some((b, e)) => Periode {
                    begin: day(Some(*b)),
                    einde: day(*e),
                },
            })
            .collect();
        assert_eq!(p.nt2_cursussen, courses);
        let referrals: Vec<_> = g
            .toeleidingen
            .iter()
            .map(|(at, status)| (day(*at), text(status)))
            .collect();
        let read: Vec<_> = p
            .diploma_toeleidingen
            .iter()
            .map(|t| (t.start_datum.clone(), t.status.clone()))
            .collect();
        assert_eq!(read, referrals);
        assert_eq!(d.trajecten.len(), g.trajecten.len());
        for (t, gt) in d.trajecten.iter().zip(&g.trajecten) {
            assert_eq!(t.type_, text(gt.type_));
            let beheerder = gt.beheerder.then(|| Beheerder {
                begin: day(gt.beheerder_begin),
                kbi_nummer: gt.kbi_nummer.and_then(text),
            });
            assert_eq!(t.beheerder, beheerder);
            assert_eq!(t.onderdelen.len(), gt.onderdelen.len());
            for (o, go) in t.onderdelen.iter().zip(&gt.onderdelen) {
                assert_eq!(o.type_, text(go.type_));
                let besluit = go.besluit.map(|(code, reden, at)| OnderdeelBesluit {
                    code: text(code),
                    reden: text(reden),
                    datum_toekenning: day(at),
                });
                assert_eq!(o.besluit, besluit);
                if let Some((code, _, _)) = go.besluit {
                    count(&format!("plo {code}"));
                }
            }
            if let Some(k) = gt.kbi_nummer {
                assert!(OFFICES.contains(&k));
            }
            if gt.beheerder && gt.beheerder_begin.is_none() {
                count("manager without a start");
            }
        }
        if g.trajecten
            .iter()
            .filter(|t| t.type_.starts_with("TT_IB"))
            .count()
            > 1
        {
            count("two integration trajectories");
            if !g.trajecten[0].decision {
                count("the later one written first");
            }
        }
        if g.trajecten.iter().any(|t| t.type_ == "TT_NT2") {
            count("NT2 trajectory");
        }
        match g.geboortedatum.as_deref() {
            None => count("birth date absent"),
            Some(b) if b.contains("-99") => count("birth date with 99"),
            Some(b) => {
                let year: i32 = b[..4].parse().unwrap();
                assert!((1950..=2008).contains(&year), "{b}");
            }
        }
        if g.geslacht.is_none() {
            count("sex absent");
        }
        if let Some(level) = g.hoogst_behaald_nt2 {
            count(&format!("level {level}"));
        }
        if g.nt2_cursussen.iter().any(|c| matches!(c, Some((_, None)))) {
            count("course without end");
        }
        if !g.toeleidingen.is_empty() {
            count("diploma equivalence");
        }
    }
    for wanted in [
        "plo VO",
        "plo NVO",
        "plo NVT",
        "manager without a start",
        "two integration trajectories",
        "the later one written first",
        "NT2 trajectory",
        "birth date absent",
        "birth date with 99",
        "sex absent",
        "level A1",
        "level A2",
        "level B1",
        "level B2",
        "level C1",
        "level C2",
        "course without end",
        "diploma equivalence",
    ] {
        assert!(
            mix.get(wanted).copied().unwrap_or(0) > 0,
            "no {wanted}: {mix:?}"
        );
    }
    // The mapping reads none of it: the programme parts' decisions and the NT2 level are
    // counted (M19), nothing else changes in the events (`expected.jsonl`, checked above).
    assert!(report.warnings.contains_key("M19"));
}

/// Generated replies spoilt at random (an element or text inserted after a random tag, a
/// profile element repeated, an entity, a cut): whatever the damage, the export's reading gives
/// the import's report (same ERRORs, paths, counts) and the import's persons.
#[test]
fn spoilt_replies_are_judged_the_same_in_both_modes() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    write_dossiers(
        &DossierOptions {
            persons: 40,
            seed: 31,
            extracted_at: "2026-11-01T02:00:00Z".parse().unwrap(),
            snapshot_id: None,
            per_file: 40,
        },
        dir.path(),
    )
    .unwrap();
    let original = std::fs::read_to_string(dir.path().join("batch-00001.xml")).unwrap();
    let tags: Vec<usize> = original.match_indices('>').map(|(i, _)| i + 1).collect();
    let profile_elements = [
        "<Geboortedatum>1999-01-01</Geboortedatum>",
        "<Geslacht><Code>1</Code></Geslacht>",
        "<KbiNummer>10001</KbiNummer>",
        "<HoogstBehaald>B2</HoogstBehaald>",
        "<StartDatum>2024-01-01</StartDatum>",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    let mut refused = 0;
    for case in 0..60 {
        let at = tags[rng.gen_range(0..tags.len())];
        let insert = match case % 6 {
            0 => "<x>y</x>".to_string(),
            1 => "tekst".to_string(),
            2 => profile_elements[rng.gen_range(0..profile_elements.len())].to_string(),
            3 => "&e;".to_string(),
            4 => "<Periode><Begin>2020-01-01</Begin></Periode>".to_string(),
            _ => String::new(),
        };
        let text = if case % 6 == 5 {
            original[..at].to_string()
        } else {
            format!("{}{insert}{}", &original[..at], &original[at..])
        };
        let file = dir.path().join(format!("spoilt-{case}.xml"));
        std::fs::write(&file, text).unwrap();
        let (report, _) = both_ways(std::slice::from_ref(&file), 1);
        refused += u32::from(!report.ok);
    }
    assert!(refused > 10, "the damage is seen: {refused} of 60 refused");
}

/// [`crate::read_dossiers_mapped`]: the mapping runs on the reader's workers (never on the
/// caller's thread), each file's persons through one mapping in order, and `each` gets the
/// results of exactly the persons [`read_dossiers`] hands on, in the same order — a second
/// dossier's result included in none.
#[test]
fn mapped_reading_maps_on_the_workers_and_hands_on_the_same_persons_in_order() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let files = generated(dir.path(), 300, 7);
    assert!(files.len() > 3);
    let caller = std::thread::current().id();
    for (inputs, workers) in [(files.clone(), 1), (files.clone(), 3), {
        let mut with_repeat = files.clone();
        with_repeat.push(files[1].clone());
        (with_repeat, 2)
    }] {
        let (expected_report, expected) = read_all(&inputs, workers);
        let mappings = AtomicUsize::new(0);
        let mut got: Vec<(u64, String, std::thread::ThreadId, usize)> = Vec::new();
        let report = crate::read_dossiers_mapped(
            &DossierRead {
                inputs: inputs.clone(),
                codes: Codes::shipped(),
            },
            &RunOptions {
                workers,
                ..RunOptions::default()
            },
            &Silent,
            &|| {
                let mapping = mappings.fetch_add(1, Ordering::Relaxed);
                move |p: KeptPerson| {
                    let mut line = Vec::new();
                    crate::write_person_line(&mut line, p.insz, &p.events);
                    (
                        p.insz.value(),
                        String::from_utf8(line).unwrap(),
                        std::thread::current().id(),
                        mapping,
                    )
                }
            },
            &mut |t| got.push(t),
        )
        .unwrap();
        assert_eq!(comparable(&report), comparable(&expected_report));
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            expected.iter().map(|p| p.insz.value()).collect::<Vec<_>>()
        );
        assert_eq!(
            got.iter().map(|g| g.1.as_str()).collect::<String>(),
            lines(&expected)
        );
        assert!(got.iter().all(|g| g.2 != caller), "mapped on a worker");
        // One mapping per file read (workers start one per file).
        assert_eq!(mappings.load(Ordering::Relaxed), inputs.len());
        // A mapping's results come in one run: a file's persons are mapped by one mapping.
        let mut runs = got.iter().map(|g| g.3).collect::<Vec<_>>();
        runs.dedup();
        let n = runs.len();
        runs.sort_unstable();
        runs.dedup();
        assert_eq!(runs.len(), n);
    }
}
