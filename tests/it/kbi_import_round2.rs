//! The import engine (issue 20) and the import's hostile inputs of round 2 (issue 24, items
//! 1–5), through the real binary where the attack is black-box: an ERROR in one file of many
//! reported once and the same for any number of workers; a decompression bomb; a file swapped
//! for a FIFO after the listing (a test hook: the race is made certain); symbolic links and
//! special files counted; invalid UTF-8 in names and attribute values; no dossier value or
//! INSZ-shaped file name in errors and reports; the per-reply bound on kept values.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kbi_core::snapshot::generate::make_insz;

const BIN: &str = env!("CARGO_BIN_EXE_kbi-advice");
const WEB_NS: &str = "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn insz(n: u32) -> String {
    make_insz(1990, 1, 15, n).to_string()
}

fn context_named(naam: &str) -> String {
    format!("<Context><Naam>{naam}</Naam><Versie>01.00.0000</Versie></Context>")
}

fn reply_with(context: &str, inner: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek>{context}<Antwoorden><Antwoord><Inhoud><KBIDossier>{inner}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#
    )
}

fn reply(inner: &str) -> String {
    reply_with(&context_named("GeefDossierKBI"), inner)
}

fn exception_reply(identificatie: &str, kind: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek>{}<Uitzonderingen><Uitzondering><Identificatie>{identificatie}</Identificatie><Type>{kind}</Type></Uitzondering></Uitzonderingen></Repliek></web:GeefDossierKBIResponse>"#,
        context_named("GeefDossierKBI")
    )
}

fn obligated(insz: &str) -> String {
    format!("<Personalia><INSZ>{insz}</INSZ></Personalia><Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-01-03</Begin></Periode></Doelgroep>")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs the import into `dir` (snapshot `out.jsonl`, report `report.json`).
fn import(dir: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["snapshot", "import", "--from", "kbi-dossier-01.00"])
        .args(inputs)
        .arg("--out")
        .arg(dir.join("out.jsonl"))
        .args([
            "--snapshot-id",
            "r2",
            "--extracted-at",
            "2024-11-30T02:00:00Z",
        ])
        .arg("--report")
        .arg(dir.join("report.json"))
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// The report without the time and the output path.
fn comparable(dir: &Path) -> serde_json::Value {
    let mut r = report(dir);
    let map = r.as_object_mut().unwrap();
    map.remove("seconds");
    map.remove("out");
    r
}

fn error_lines(output: &Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("ERROR"))
        .map(str::to_string)
        .collect()
}

/// Refused (exit 2, nothing written) and none of `secrets` in stdout, stderr or the report.
fn assert_refused_quietly(dir: &Path, output: &Output, secrets: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    assert!(!dir.join("out.jsonl").exists(), "a refused import wrote");
    let texts = [
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr(output),
        std::fs::read_to_string(dir.join("report.json")).unwrap_or_default(),
    ];
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
        }
    }
}

/// Generated batches: `files` files of `per_file` replies.
fn generated(dir: &Path, persons: u32, per_file: u32) -> PathBuf {
    let replies = dir.join("replies");
    let status = Command::new(BIN)
        .args(["snapshot", "generate", "--format", "kbi-dossier-01.00"])
        .args(["--persons", &persons.to_string(), "--seed", "7"])
        .args(["--per-file", &per_file.to_string()])
        .arg("--out")
        .arg(&replies)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(replies.join("expected.jsonl")).unwrap();
    replies
}

// ---------- one engine (issue 20) ----------

/// Twelve generated files and, among them, one with an ERROR in its 3rd reply: the refusal
/// names that one ERROR once (file, reply, row, path), counts what was read before and after as
/// one thread does, and is the same with 1, 2 and 8 workers.
#[test]
fn an_error_in_one_file_of_many_is_reported_once_whatever_the_workers() {
    let src = tmp();
    let replies = generated(src.path(), 2400, 200);
    let bad = format!(
        "<B>{}{}{}{}</B>",
        reply(&obligated(&insz(900))),
        reply(&obligated(&insz(901))),
        reply(&obligated(&insz(902)).replace("PLICHT", "ONBEKEND_TYPE")),
        reply(&obligated(&insz(903))),
    );
    // Named to sort in the middle of batch-*.xml.
    write(&replies, "batch-00006a.xml", bad.as_bytes());
    let mut runs = Vec::new();
    for workers in ["1", "2", "8"] {
        let dir = tmp();
        let output = import(dir.path(), &[&replies], &["--workers", workers]);
        assert_refused_quietly(dir.path(), &output, &[&insz(902)]);
        runs.push((error_lines(&output), comparable(dir.path())));
    }
    let (errors, r) = &runs[0];
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("ERROR M2 file 7 (")
            && errors[0].contains("batch-00006a.xml) reply 3 KBIDossier/Doelgroep/Type: unknown type (value not shown: 13 characters, not on the list of [doelgroep] types in kbi-codes.toml)")
            && !errors[0].contains("ONBEKEND_TYPE"),
        "{errors:?}"
    );
    assert_eq!(r["errors_total"], 1);
    assert_eq!(r["files"], 13);
    assert_eq!(r["replies"], 2404);
    // Persons are counted up to the first ERROR: six files of 200 replies, two of the bad one.
    let not_found_before = r["not_found"].as_u64().unwrap();
    assert!(r["persons"].as_u64().unwrap() <= 1202, "{r}");
    assert!(not_found_before > 0, "{r}");
    assert_eq!(runs[0], runs[1], "1 vs 2 workers");
    assert_eq!(runs[0], runs[2], "1 vs 8 workers");
}

/// The snapshot's bytes and the report do not depend on the number of workers.
#[test]
fn snapshot_and_report_do_not_depend_on_the_workers() {
    let src = tmp();
    let replies = generated(src.path(), 3000, 250);
    let mut runs = Vec::new();
    for workers in ["1", "2", "8"] {
        let dir = tmp();
        let output = import(dir.path(), &[&replies], &["--workers", workers]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        runs.push((
            std::fs::read(dir.path().join("out.jsonl")).unwrap(),
            comparable(dir.path()),
        ));
    }
    assert!(runs[0].1["persons"].as_u64().unwrap() > 2500);
    assert!(runs[0].0 == runs[1].0, "1 vs 2 workers: snapshots differ");
    assert!(runs[0].0 == runs[2].0, "1 vs 8 workers: snapshots differ");
    assert_eq!(runs[0].1, runs[1].1);
    assert_eq!(runs[0].1, runs[2].1);
}

// ---------- item 1: decompressed size ----------

/// Valid XML (one reply, then blanks and empty elements outside replies, which the reader
/// accepts and skips) compressed with zstd: `blank` bytes of spaces.
fn zstd_bomb(path: &Path, blank: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = zstd::stream::write::Encoder::new(file, 3).unwrap();
    enc.write_all(format!("<B>{}", reply(&obligated(&insz(20)))).as_bytes())
        .unwrap();
    let mut chunk = vec![b' '; 1 << 19];
    chunk.extend_from_slice(b"<p/>");
    let mut left = blank;
    while left > 0 {
        let n = left.min(chunk.len());
        enc.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    enc.write_all(b"</B>").unwrap();
    enc.finish().unwrap();
}

#[test]
fn a_file_decompressing_past_the_cap_is_refused_naming_it_masked() {
    let dir = tmp();
    let a = insz(21);
    let spaced = format!(
        "{} {} {} {} {}",
        &a[0..2],
        &a[2..4],
        &a[4..6],
        &a[6..9],
        &a[9..11]
    );
    let bomb = dir.path().join(format!("{spaced}.xml.zst"));
    zstd_bomb(&bomb, 8 << 20);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 64 << 10);
    let output = import(
        dir.path(),
        &[&bomb],
        &["--max-decompressed-bytes", "1000000"],
    );
    assert_refused_quietly(dir.path(), &output, &[&a, &spaced]);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("ERROR XML file 1 (")
            && errors[0].contains("## ## ## ### ##.xml.zst")
            && errors[0].contains("more than 1000000 bytes once decompressed"),
        "{errors:?}"
    );
    // The same file under the default cap: imported.
    let ok = tmp();
    let output = import(ok.path(), &[&bomb], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// The ratio guard: past the 64 MiB every file may reach, more than 1000× the compressed bytes
/// read is refused under the default cap.
#[test]
fn a_decompression_bomb_is_refused_by_the_ratio_guard() {
    let dir = tmp();
    let bomb = dir.path().join("bomb.xml.zst");
    zstd_bomb(&bomb, 200 << 20);
    let compressed = std::fs::metadata(&bomb).unwrap().len();
    assert!(compressed < 100 << 10, "{compressed}");
    let started = std::time::Instant::now();
    let output = import(dir.path(), &[&bomb], &[]);
    assert_refused_quietly(dir.path(), &output, &[]);
    let errors = error_lines(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("more than 1000 times its compressed size"),
        "{errors:?}"
    );
    // Refused on the way, not after the 200 MB (a loose bound for a slow debug build).
    assert!(started.elapsed() < Duration::from_secs(60));
}

// ---------- item 2: files swapped after the listing; links and special files ----------

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// The hook runs between the listing and the opening: it replaces the file by a FIFO (no
/// writer ever opens it). The import must not hang: the descriptor is checked, not the path.
#[test]
fn a_file_replaced_by_a_fifo_after_the_listing_is_refused_not_waited_for() {
    fn swap(path: &Path) {
        std::fs::remove_file(path).unwrap();
        mkfifo(path);
    }
    let dir = tmp();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write(&inputs, "a.xml", reply(&obligated(&insz(30))).as_bytes());
    let options = kbi_import::ImportOptions {
        inputs: vec![inputs.clone()],
        out: dir.path().join("out.jsonl"),
        snapshot_id: "fifo".into(),
        extracted_at: "2024-11-30T02:00:00Z".parse().unwrap(),
        employment_service: None,
        codes: kbi_import::codes::Codes::shipped(),
    };
    let run = kbi_import::RunOptions {
        workers: 2,
        before_open: Some(swap),
        ..kbi_import::RunOptions::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = kbi_import::import_with(&options, &kbi_core::io::Silent, &run);
        let _ = tx.send(result.map(|r| r.ok).map_err(|e| e.to_string()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the import hangs on a FIFO");
    let error = result.expect_err("a FIFO was imported");
    assert!(error.contains("not a regular file"), "{error}");
    assert!(!dir.path().join("out.jsonl").exists());
}

/// Symbolic links (to a valid file) and a FIFO inside an input directory are not read; they
/// are counted in the report and WARNed.
#[test]
fn links_and_special_files_in_a_directory_are_skipped_counted_and_warned() {
    let dir = tmp();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let elsewhere = write(
        dir.path(),
        "elsewhere.xml",
        reply(&obligated(&insz(31))).as_bytes(),
    );
    write(&inputs, "a.xml", reply(&obligated(&insz(32))).as_bytes());
    std::os::unix::fs::symlink(&elsewhere, inputs.join("b.xml")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", inputs.join("c.xml")).unwrap();
    mkfifo(&inputs.join("d.xml"));
    let output = import(dir.path(), &[&inputs], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let r = report(dir.path());
    assert_eq!(r["files"], 1);
    assert_eq!(r["persons"], 1);
    assert_eq!(r["skipped"]["symbolic links"], 2, "{r}");
    assert_eq!(
        r["skipped"]["special files (FIFO, socket, device)"], 1,
        "{r}"
    );
    assert_eq!(r["warnings"]["INPUT"]["total"], 3, "{r}");
    let err = stderr(&output);
    assert!(err.contains("WARN INPUT: 3"), "{err}");
}

// ---------- item 3: invalid UTF-8 in names and attribute values ----------

#[test]
fn invalid_utf8_in_an_element_name_or_attribute_value_is_refused() {
    let good = reply(&obligated(&insz(40)));
    let cases: Vec<Vec<u8>> = vec![
        // An unknown element (skipped, counted) whose name is not UTF-8.
        good.replacen("<Personalia>", "<Personalia><Na\u{1}m>x</Na\u{1}m>", 1)
            .into_bytes()
            .iter()
            .map(|&b| if b == 1 { 0xff } else { b })
            .collect(),
        // An attribute value that is not UTF-8.
        good.replacen("<Repliek>", "<Repliek a=\"\u{1}\">", 1)
            .into_bytes()
            .iter()
            .map(|&b| if b == 1 { 0xfe } else { b })
            .collect(),
        // An attribute name that is not UTF-8.
        good.replacen("<KBIDossier>", "<KBIDossier \u{1}=\"x\">", 1)
            .into_bytes()
            .iter()
            .map(|&b| if b == 1 { 0xc3 } else { b })
            .collect(),
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        let dir = tmp();
        let input = write(dir.path(), "a.xml", &bytes);
        let output = import(dir.path(), &[&input], &[]);
        assert_refused_quietly(dir.path(), &output, &[&insz(40)]);
        let err = stderr(&output);
        assert!(
            err.contains("ERROR XML") && err.contains("not valid UTF-8"),
            "case {i}: {err}"
        );
    }
}

// ---------- item 4: no value from a dossier in errors or the report ----------

#[test]
fn an_insz_planted_in_an_echoed_element_is_never_shown() {
    let a = insz(50);
    let spaced = format!(
        "{} {} {} {} {}",
        &a[0..2],
        &a[2..4],
        &a[4..6],
        &a[6..9],
        &a[9..11]
    );
    let dotted = format!(
        "{}.{}.{}-{}.{}",
        &a[0..2],
        &a[2..4],
        &a[4..6],
        &a[6..9],
        &a[9..11]
    );
    let person = insz(51);
    for planted in [&a, &spaced, &dotted] {
        let cases = [
            ("Uitzondering/Identificatie FOUT", exception_reply(planted, "FOUT")),
            ("Uitzondering/Identificatie WAARSCHUWING", exception_reply(planted, "WAARSCHUWING")),
            ("Uitzondering/Type", exception_reply("99996", planted)),
            (
                "Inbreuk/Type",
                reply(&format!(
                    "{}<Inbreuken><Inbreuk><Type>{planted}</Type><DatumVaststelling>2023-01-01</DatumVaststelling></Inbreuk></Inbreuken>",
                    obligated(&person)
                )),
            ),
            ("Context/Naam", reply_with(&context_named(planted), &obligated(&person))),
            ("Doelgroep/Code", reply(&obligated(&person).replace("<Code>JA</Code>", &format!("<Code>{planted}</Code>")))),
        ];
        for (what, text) in cases {
            let dir = tmp();
            let input = write(dir.path(), "a.xml", text.as_bytes());
            let output = import(dir.path(), &[&input], &[]);
            assert_refused_quietly(dir.path(), &output, &[&a, planted, &person]);
            assert!(
                stderr(&output).contains("not shown"),
                "{what}: {}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn a_file_named_after_a_spaced_insz_is_masked() {
    let a = insz(52);
    for name in [
        format!(
            "{} {} {} {} {}.xml",
            &a[0..2],
            &a[2..4],
            &a[4..6],
            &a[6..9],
            &a[9..11]
        ),
        format!(
            "{}.{}.{}-{}.{}.xml",
            &a[0..2],
            &a[2..4],
            &a[4..6],
            &a[6..9],
            &a[9..11]
        ),
    ] {
        let dir = tmp();
        let input = write(
            dir.path(),
            &name,
            exception_reply("99996", "FOUT").as_bytes(),
        );
        let output = import(dir.path(), &[&input], &[]);
        let digits_only: String = name.chars().filter(char::is_ascii_digit).collect();
        assert_refused_quietly(dir.path(), &output, &[&a, name.trim_end_matches(".xml")]);
        assert!(!stderr(&output).contains(&digits_only));
        assert!(stderr(&output).contains("##"), "{}", stderr(&output));
    }
}

// ---------- item 5: what one reply may keep ----------

#[test]
fn a_reply_keeping_too_many_values_or_bytes_is_refused() {
    let person = insz(60);
    let many = "<Contract><DatumRegistratie>2022-01-01</DatumRegistratie></Contract>".repeat(6000);
    let long = format!("<Inbreuk><Type>{}</Type></Inbreuk>", "7".repeat(1000)).repeat(1100);
    let cases = [
        (
            reply(&format!(
                "{}<Contracten>{many}</Contracten>",
                obligated(&person)
            )),
            "values and records kept in one reply",
        ),
        (
            reply(&format!(
                "{}<Inbreuken>{long}</Inbreuken>",
                obligated(&person)
            )),
            "bytes of values kept in one reply",
        ),
    ];
    for (text, needle) in cases {
        let dir = tmp();
        let input = write(dir.path(), "a.xml", text.as_bytes());
        let output = import(dir.path(), &[&input], &[]);
        assert_refused_quietly(dir.path(), &output, &[&person]);
        let err = stderr(&output);
        assert!(err.contains("ERROR XML") && err.contains(needle), "{err}");
    }
    // Below the bounds, the same shapes are read.
    let dir = tmp();
    let few = "<Contract><DatumRegistratie>2022-01-01</DatumRegistratie></Contract>".repeat(100);
    let input = write(
        dir.path(),
        "a.xml",
        reply(&format!(
            "{}<Contracten>{few}</Contracten>",
            obligated(&person)
        ))
        .as_bytes(),
    );
    let output = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
