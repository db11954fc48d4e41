//! Corrupt snapshots are refused whole, with an error that names the line and the problem —
//! and never the INSZ.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use kbi_core::domain::RuleSet;
use kbi_core::io::Silent;
use kbi_core::snapshot::load_path;

const HEADER: &str = r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "t", "extracted_at": "2026-11-01T02:00:00Z", "persons": 3}}"#;
const A: &str = r#"{"insz": "80010110005", "events": []}"#;
const B: &str = r#"{"insz": "81020210201", "events": [{"date": "2024-03-01", "type": "OBLIGATION_START", "region": "VL"}]}"#;
const C: &str = r#"{"insz": "82030310494", "events": [{"date": "2022-04-04", "type": "OBLIGATION_START", "region": "VL"}]}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn lines(lines: &[&str]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

/// Loads and returns the error text (the test fails if the file is accepted).
fn refused(path: &Path) -> String {
    match load_path(path, Arc::new(RuleSet::shipped()), &Silent) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => {
            let text = e.to_string();
            for insz in ["80010110005", "81020210201", "82030310494"] {
                assert!(!text.contains(insz), "error text leaks an INSZ: {text}");
            }
            text
        }
    }
}

fn assert_mentions(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            error.contains(part),
            "error {error:?} should mention {part:?}"
        );
    }
}

#[test]
fn a_valid_file_loads_plain_gzip_and_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[HEADER, A, B, C]);
    let plain = write(dir.path(), "s.jsonl", &text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = write(dir.path(), "s.jsonl.gz", &gz.finish().unwrap());
    let zst = write(
        dir.path(),
        "s.jsonl.zst",
        &zstd::encode_all(&text[..], 3).unwrap(),
    );
    // Compression is recognised by magic bytes even without the extension.
    let zst_no_ext = write(
        dir.path(),
        "s.bin",
        &zstd::encode_all(&text[..], 3).unwrap(),
    );
    for path in [plain, gz, zst, zst_no_ext] {
        let snapshot = load_path(&path, Arc::new(RuleSet::shipped()), &Silent).unwrap();
        assert_eq!(snapshot.index.len(), 3, "{}", path.display());
        assert_eq!(snapshot.meta.snapshot_id, "t");
    }
}

#[test]
fn truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = lines(&[HEADER, A, B, C]);
    text.truncate(text.len() - 30);
    let error = refused(&write(dir.path(), "cut.jsonl", &text));
    assert_mentions(&error, &["line 4", "not a valid person record"]);

    let error = refused(&write(dir.path(), "short.jsonl", &lines(&[HEADER, A, B])));
    assert_mentions(
        &error,
        &["line 4", "2 person lines", "declares 3", "truncated"],
    );
}

#[test]
fn wrong_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"{"insz": "85073003328", "events": []}"#;
    let error = refused(&write(
        dir.path(),
        "long.jsonl",
        &lines(&[HEADER, A, B, C, extra]),
    ));
    assert_mentions(&error, &["line 5", "more person lines", "3"]);
}

#[test]
fn duplicate_insz_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(&write(dir.path(), "dup.jsonl", &lines(&[HEADER, A, A, C])));
    assert_mentions(&error, &["line 3", "duplicate INSZ", "line 2"]);
    // Not adjacent and not sorted: found when the index is sorted.
    let error = refused(&write(dir.path(), "dup2.jsonl", &lines(&[HEADER, C, A, C])));
    assert_mentions(&error, &["line 4", "duplicate INSZ", "line 2"]);
}

#[test]
fn bad_date_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, why) in [
        ("2022-02-30", "does not exist"),
        ("2022-4-04", "YYYY-MM-DD"),
        ("", "YYYY-MM-DD"),
    ] {
        let person = format!(
            r#"{{"insz": "82030310494", "events": [{{"date": "2022-04-04", "type": "OBLIGATION_START", "region": "VL"}}, {{"date": "{bad}", "type": "REGISTRATION"}}]}}"#
        );
        let error = refused(&write(
            dir.path(),
            "date.jsonl",
            &lines(&[HEADER, A, B, &person]),
        ));
        assert_mentions(&error, &["line 4", "event 2", "date", why]);
    }
}

#[test]
fn unknown_type_and_missing_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"date": "2022-04-04", "type": "OBLIGATION_SUSPENDED"}"#,
            "unknown event `type`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "OBLIGATION_START"}"#,
            "missing `region`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "OBLIGATION_START", "region": "WAL"}"#,
            "unknown `region`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "INFRINGEMENT"}"#,
            "missing `obligation`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "INFRINGEMENT", "obligation": "SWIMMING"}"#,
            "unknown `obligation`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "DEADLINE_EXTENSION", "obligation": "REGISTRATION"}"#,
            "missing `until`",
        ),
        (
            r#"{"date": "2022-04-04", "type": "EXEMPTION", "cause": "BORED"}"#,
            "unknown `cause`",
        ),
        (r#"{"type": "REGISTRATION"}"#, "missing field `date`"),
    ];
    for (event, why) in cases {
        let person = format!(r#"{{"insz": "82030310494", "events": [{event}]}}"#);
        let error = refused(&write(
            dir.path(),
            "type.jsonl",
            &lines(&[HEADER, A, B, &person]),
        ));
        assert_mentions(&error, &["line 4", why]);
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let person = r#"{"insz": "82030310494", "note": "x", "events": [{"date": "2022-04-04", "type": "OBLIGATION_START", "region": "VL", "office": "Gent"}]}"#;
    let path = write(dir.path(), "extra.jsonl", &lines(&[HEADER, A, B, person]));
    assert!(load_path(&path, Arc::new(RuleSet::shipped()), &Silent).is_ok());
}

#[test]
fn invalid_insz_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (insz, why) in [
        ("85073003329", "check digits"),
        ("85.07.30-033.28", "11 digits"),
        ("8507300332", "11 digits"),
    ] {
        let person = format!(r#"{{"insz": "{insz}", "events": []}}"#);
        let error = refused(&write(
            dir.path(),
            "insz.jsonl",
            &lines(&[HEADER, A, &person, C]),
        ));
        assert_mentions(&error, &["line 3", why]);
        assert!(!error.contains(insz));
    }
}

#[test]
fn bad_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"kbi_snapshot": {"format": 2, "snapshot_id": "t", "extracted_at": "2026-11-01T02:00:00Z", "persons": 0}}"#,
            "`format` is not supported",
        ),
        (
            r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "t", "extracted_at": "yesterday", "persons": 0}}"#,
            "extracted_at",
        ),
        (
            r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "", "extracted_at": "2026-11-01T02:00:00Z", "persons": 0}}"#,
            "snapshot_id",
        ),
        (r#"{"insz": "80010110005", "events": []}"#, "header"),
    ];
    for (header, why) in cases {
        let error = refused(&write(dir.path(), "h.jsonl", &lines(&[header])));
        assert_mentions(&error, &["line 1", why]);
    }
    let error = refused(&write(dir.path(), "empty.jsonl", b""));
    assert_mentions(&error, &["line 1", "empty"]);
}

#[test]
fn blank_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = refused(&write(
        dir.path(),
        "blank.jsonl",
        &lines(&[HEADER, A, "", C]),
    ));
    assert_mentions(&error, &["line 3", "empty line"]);
}

#[test]
fn bad_gzip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(&[HEADER, A, B, C]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let good = gz.finish().unwrap();
    // Truncated compressed stream.
    let error = refused(&write(dir.path(), "cut.jsonl.gz", &good[..good.len() / 2]));
    assert!(error.contains("line"), "{error}");
    // Corrupted bytes in the middle of the deflate data.
    let mut corrupt = good.clone();
    for b in corrupt[20..40].iter_mut() {
        *b ^= 0x5a;
    }
    let error = refused(&write(dir.path(), "bad.jsonl.gz", &corrupt));
    assert!(error.contains("line"), "{error}");
    // A .gz name with no gzip inside.
    let error = refused(&write(dir.path(), "plain.jsonl.gz", &text));
    assert_mentions(&error, &["line 1", "Gzip"]);
}

#[test]
fn unsorted_file_is_accepted_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "unsorted.jsonl", &lines(&[HEADER, C, A, B]));
    let snapshot = load_path(&path, Arc::new(RuleSet::shipped()), &Silent).unwrap();
    let order: Vec<String> = snapshot.index.iter().map(|(i, _)| i.to_string()).collect();
    assert_eq!(order, ["80010110005", "81020210201", "82030310494"]);
}

#[test]
fn check_command_reports_a_refused_snapshot_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "short.jsonl", &lines(&[HEADER, A, B]));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args(["snapshot", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("truncated"),
        "{stderr}"
    );
}
