//! `snapshot import --from kbi-dossier-01.00` through the real binary: the spec's two examples,
//! the input forms, all or nothing, hostile XML, error replies, `facts` and the
//! employment-service list. Every refusal is also scraped for the INSZs involved.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use kbi_core::domain::{EventKind, Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::make_insz;
use kbi_core::snapshot::load_path;
use kbi_wire::json::{AnswerJson, Problem};

const BIN: &str = env!("CARGO_BIN_EXE_kbi-advice");
const FIXTURES: &str = "tests/fixtures/kbi-dossier";
const VALID_INSZ: &str = "88021412358";

fn bin() -> Command {
    Command::new(BIN)
}

/// Runs the import; returns the output and the written snapshot path.
fn import(dir: &Path, inputs: &[&Path], extra: &[&str]) -> (Output, PathBuf) {
    let out = dir.join("snapshot.jsonl");
    let report = dir.join("report.json");
    let output = bin()
        .args(["snapshot", "import", "--from", "kbi-dossier-01.00"])
        .args(inputs)
        .arg("--out")
        .arg(&out)
        .args([
            "--snapshot-id",
            "import-test",
            "--extracted-at",
            "2024-11-30T02:00:00Z",
        ])
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    (output, out)
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// No INSZ in stdout, stderr or the report.
fn assert_no_insz(dir: &Path, output: &Output, insz: &[&str]) {
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap_or_default();
    let texts = [
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
        report,
    ];
    for text in &texts {
        for i in insz {
            assert!(!text.contains(i), "an INSZ leaked into the output:\n{text}");
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Refused: exit 2, nothing written (no snapshot, no temporary file left), no INSZ shown.
fn assert_refused(dir: &Path, output: &Output, out: &Path, insz: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    assert!(!out.exists(), "a refused import wrote a snapshot");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "report.json" && !n.ends_with(".xml") && !n.ends_with(".csv"))
        .collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
    assert_no_insz(dir, output, insz);
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------- building replies ----------

const WEB_NS: &str = "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be";

fn context() -> String {
    "<Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie><Bericht><Type>ANTWOORD</Type></Bericht></Context>".into()
}

/// A bare reply holding one dossier with `inner` below `KBIDossier`.
fn reply(inner: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek>{}<Antwoorden><Antwoord><Referte>r</Referte><Inhoud><KBIDossier>{inner}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#,
        context()
    )
}

/// A reply with a reply-level Uitzondering and no dossier.
fn exception_reply(identificatie: &str, kind: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek>{}<Uitzonderingen><Uitzondering><Identificatie>{identificatie}</Identificatie><Oorsprong>MAGDA</Oorsprong><Type>{kind}</Type><Diagnose>x</Diagnose></Uitzondering></Uitzonderingen></Repliek></web:GeefDossierKBIResponse>"#,
        context()
    )
}

fn soap(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn obligated(insz: &str, begin: &str) -> String {
    format!("<Personalia><INSZ>{insz}</INSZ></Personalia><Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>{begin}</Begin></Periode></Doelgroep>")
}

fn insz(n: u32) -> String {
    make_insz(1990, 1, 15, n).to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn person_lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn header(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn answer(snapshot: &Path, insz: &str, date: &str) -> serde_json::Value {
    let output = bin()
        .args(["check", "--snapshot"])
        .arg(snapshot)
        .args(["--insz", insz, "--date", date])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {}", stderr(&output)))
}

// ---------- the spec's examples ----------

fn expected_rows() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/valid-expected.csv")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end_matches('\r')
                .split(',')
                .map(String::from)
                .collect()
        })
        .collect();
    assert!(rows.len() >= 50, "the expected table lost rows");
    rows
}

fn as_row(json: &serde_json::Value) -> Vec<String> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    vec![
        text(&json["subject"]),
        text(&json["compliant"]),
        text(&json["result"]),
        text(&json["reason"]["code"]),
        text(&json["code"]),
    ]
}

#[test]
fn valid_example_imports_and_answers_as_expected() {
    let dir = tmp();
    let input = Path::new(FIXTURES).join("valid-88021412358.xml");
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let h = header(&out);
    assert_eq!(h["kbi_snapshot"]["persons"], 1);
    let facts = h["kbi_snapshot"]["facts"].as_array().unwrap();
    assert_eq!(facts.len(), 9);
    assert!(!facts.iter().any(|f| f == "EMPLOYMENT_SERVICE_REGISTRATION"));
    assert_eq!(
        h["kbi_snapshot"]["sources"],
        serde_json::json!([{"kind": "kbi-dossier", "version": "01.00", "files": 1, "dossiers": 1}])
    );
    // The person line of kbi-import.md section 7.
    let lines = person_lines(&out);
    assert_eq!(lines[0]["insz"], VALID_INSZ);
    // The file name holds the INSZ: masked in the report and on stderr like the rest.
    assert_no_insz(dir.path(), &output, &[VALID_INSZ]);
    let types: Vec<&str> = lines[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OBLIGATION_START",
            "DEADLINE_EXTENSION",
            "REGISTRATION",
            "CONTRACT_SIGNED",
            "INFRINGEMENT",
            "INFRINGEMENT_CLOSED",
            "CERTIFICATE",
            "EXEMPTION"
        ]
    );
    let r = report(dir.path());
    assert_eq!(r["warnings"]["M8"]["total"], 1, "the Opschorting");
    assert_eq!(r["warnings"]["M5"]["total"], 1, "the exemption code");
    assert_eq!(r["ignored"]["Personalia/Naam"], 1);
    assert_eq!(r["ignored"]["Wooncode"], 1);

    // Answers: the library's index for every row, the binary's `check` for some.
    let rules = Arc::new(RuleSet::shipped());
    let snapshot = load_path(&out, rules.clone(), &Silent).unwrap();
    // The reader's view of the header (M23).
    assert!(!snapshot.meta.facts.is_all());
    assert!(snapshot.meta.facts.records(EventKind::Certificate));
    assert!(!snapshot
        .meta
        .facts
        .records(EventKind::EmploymentServiceRegistration));
    assert!(snapshot
        .meta
        .sources
        .as_deref()
        .unwrap()
        .contains("kbi-dossier"));
    let mut failures = Vec::new();
    for (i, row) in expected_rows().iter().enumerate() {
        let json = match Question::parse(&row[0], Some(&row[1]), None)
            .map_err(|code| kbi_core::domain::Refusal { code, found: None })
            .and_then(|q| snapshot.advise(&q))
        {
            Ok(advice) => {
                serde_json::to_value(AnswerJson::new(&advice, &snapshot.meta, &rules.version))
                    .unwrap()
            }
            Err(refusal) => serde_json::to_value(Problem::from_code(refusal.code)).unwrap(),
        };
        if as_row(&json) != row[2..] {
            failures.push(format!(
                "{} (library): expected {:?}, got {:?}",
                row[1],
                &row[2..],
                as_row(&json)
            ));
        }
        if i % 6 == 0 {
            let json = answer(&out, &row[0], &row[1]);
            if as_row(&json) != row[2..] {
                failures.push(format!(
                    "{} (check): expected {:?}, got {:?}",
                    row[1],
                    &row[2..],
                    as_row(&json)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn serve_answers_the_imported_example_as_expected() {
    let dir = tmp();
    let input = Path::new(FIXTURES).join("valid-88021412358.xml");
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let server = crate::support::server::start(&out);
    let client = crate::support::http();
    let mut failures = Vec::new();
    for row in expected_rows() {
        let json: serde_json::Value = client
            .get(server.url(&format!(
                "/v1/integration-obligation/{}?date={}",
                row[0], row[1]
            )))
            .send()
            .expect("REST answers")
            .json()
            .expect("a JSON body");
        if as_row(&json) != row[2..] {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                row[1],
                &row[2..],
                as_row(&json)
            ));
        }
        if row[6].is_empty() {
            assert_eq!(json["source"]["snapshot_id"], "import-test");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_batch_is_refused_naming_its_three_errors() {
    let dir = tmp();
    let input = dir.path().join("batch.xml");
    std::fs::copy(Path::new(FIXTURES).join("invalid-batch.xml"), &input).unwrap();
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_refused(dir.path(), &output, &out, &["79110305737", "93090921180"]);
    let err = stderr(&output);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(
        errors.iter().any(|l| l.contains("M15")
            && l.contains("reply 1")
            && l.contains("KBIDossier/Inbreuken/Inbreuk[2]/Type")
            && l.contains("Inbreuk type (value not shown: 1 character, not on the list of [inbreuk.types] in kbi-codes.toml)")
            && !l.contains("\"7\"")),
        "{err}"
    );
    assert!(
        errors.iter().any(|l| l.contains("M21")
            && l.contains("reply 3")
            && l.contains("KBIDossier/Doelgroep/Periode/Begin")),
        "{err}"
    );
    assert!(
        errors.iter().any(|l| l.contains("M3")
            && l.contains("reply 3")
            && l.contains("KBIDossier/Doelgroep:")),
        "{err}"
    );
    let r = report(dir.path());
    assert_eq!(r["ok"], false);
    assert_eq!(r["errors_total"], 3);
    assert_eq!(r["not_found"], 1, "the 30001 reply");
    assert_eq!(
        r["dossiers"], 2,
        "the WAARSCHUWING reply's dossier was read"
    );
    assert_eq!(r["warnings"]["M22"]["total"], 1);
    assert_eq!(r["errors"][0]["file_number"], 1);
}

// ---------- input forms ----------

#[test]
fn files_directories_compression_envelopes_and_batches() {
    let dir = tmp();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(inputs.join("sub/deeper")).unwrap();
    let (a, b, c, d, e) = (insz(1), insz(2), insz(3), insz(4), insz(5));
    // bare reply, SOAP envelope, concatenated replies, a batch root, compressed copies
    write(&inputs, "bare.xml", &reply(&obligated(&a, "2022-01-03")));
    write(
        &inputs,
        "sub/soap.xml",
        &soap(&reply(&obligated(&b, "2022-01-03"))),
    );
    write(
        &inputs,
        "sub/deeper/concatenated.xml",
        &format!(
            "<?xml version=\"1.0\"?>{}\n<?xml version=\"1.0\"?>{}",
            reply(&obligated(&c, "2022-01-03")),
            exception_reply("30001", "FOUT")
        ),
    );
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(format!("<Batch>{}</Batch>", reply(&obligated(&d, "2022-01-03"))).as_bytes())
            .unwrap();
        enc.finish().unwrap()
    };
    std::fs::write(inputs.join("sub/batch.xml.gz"), gz).unwrap();
    let zst = zstd::encode_all(reply(&obligated(&e, "2022-01-03")).as_bytes(), 3).unwrap();
    std::fs::write(inputs.join("e.xml.zst"), zst).unwrap();
    write(&inputs, "notes.txt", "not read");
    let out_dir = tmp();
    let (output, out) = import(out_dir.path(), &[&inputs], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let r = report(out_dir.path());
    assert_eq!(r["files"], 5);
    assert_eq!(r["replies"], 6);
    assert_eq!(r["not_found"], 1);
    assert_eq!(r["persons"], 5);
    let mut found: Vec<String> = person_lines(&out)
        .iter()
        .map(|p| p["insz"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    let mut wanted = vec![a, b, c, d, e];
    wanted.sort();
    assert_eq!(found, wanted);
}

#[test]
fn compressed_output() {
    let dir = tmp();
    let input = write(
        dir.path(),
        "a.xml",
        &reply(&obligated(&insz(1), "2022-01-03")),
    );
    for name in ["s.jsonl.zst", "s.jsonl.gz"] {
        let out = dir.path().join(name);
        let output = bin()
            .args(["snapshot", "import", "--from", "kbi-dossier-01.00"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args([
                "--snapshot-id",
                "x",
                "--extracted-at",
                "2024-11-30T02:00:00Z",
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let snapshot = load_path(&out, Arc::new(RuleSet::shipped()), &Silent).unwrap();
        assert_eq!(snapshot.index.len(), 1);
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    }
}

// ---------- error replies (M22) ----------

#[test]
fn not_found_gives_no_person_line_and_a_warning_keeps_the_dossier() {
    let dir = tmp();
    let warned = reply(&obligated(&insz(7), "2022-01-03")).replace(
        "</Inhoud>",
        "</Inhoud><Uitzonderingen><Uitzondering><Identificatie>40001</Identificatie><Type>WAARSCHUWING</Type></Uitzondering></Uitzonderingen>",
    );
    let input = write(
        dir.path(),
        "a.xml",
        &format!("<B>{}{}</B>", exception_reply("30001", "FOUT"), warned),
    );
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = person_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["insz"], insz(7));
    let r = report(dir.path());
    assert_eq!(r["not_found"], 1);
    assert_eq!(r["warnings"]["M22"]["total"], 1);
}

#[test]
fn throttled_or_other_fout_refuses_the_import() {
    for (code, kind) in [("99996", "FOUT"), ("12345", "FOUT"), ("1", "ONBEKEND")] {
        let dir = tmp();
        let a = insz(8);
        let input = write(
            dir.path(),
            "a.xml",
            &format!(
                "{}{}",
                reply(&obligated(&a, "2022-01-03")),
                exception_reply(code, kind)
            ),
        );
        let (output, out) = import(dir.path(), &[&input], &[]);
        assert_refused(dir.path(), &output, &out, &[&a]);
        let err = stderr(&output);
        assert!(
            err.contains("M22")
                && err.contains("reply 2")
                && err.contains("Repliek/Uitzonderingen/Uitzondering[1]"),
            "{err}"
        );
    }
}

// ---------- refusals of the whole file ----------

#[test]
fn second_dossier_for_one_insz_is_refused() {
    let dir = tmp();
    let a = insz(9);
    let input = write(
        dir.path(),
        "a.xml",
        &format!(
            "{}{}",
            reply(&obligated(&a, "2022-01-03")),
            reply(&obligated(&a, "2023-01-03"))
        ),
    );
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_refused(dir.path(), &output, &out, &[&a]);
    let err = stderr(&output);
    assert!(
        err.contains("M23") && err.contains("reply 2") && err.contains("same INSZ"),
        "{err}"
    );
}

#[test]
fn replies_of_another_service_or_version_are_refused() {
    let a = insz(10);
    let cases = [
        (reply(&obligated(&a, "2022-01-03")).replace("01.00.0000", "02.00.0000"), "version"),
        (reply(&obligated(&a, "2022-01-03")).replace("<Naam>GeefDossierKBI</Naam>", "<Naam>GeefPersoon</Naam>"), "another service"),
        (reply(&obligated(&a, "2022-01-03")).replace("GeefDossierKBI-01.00", "GeefDossierKBI-02.00"), "namespace"),
        (
            format!("<x:GeefPersoonResponse xmlns:x=\"urn:p\"><Repliek>{}</Repliek></x:GeefPersoonResponse>", context()),
            "another service",
        ),
        (soap("<soapenv:Fault><faultcode>soapenv:Server</faultcode></soapenv:Fault>"), "SOAP Fault"),
    ];
    for (text, needle) in cases {
        let dir = tmp();
        let input = write(dir.path(), "a.xml", &text);
        let (output, out) = import(dir.path(), &[&input], &[]);
        assert_refused(dir.path(), &output, &out, &[&a]);
        assert!(
            stderr(&output).contains(needle),
            "{needle}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn hostile_xml_is_refused_with_a_clear_message() {
    let a = insz(11);
    let good = reply(&obligated(&a, "2022-01-03"));
    let cases = [
        (
            format!("<!DOCTYPE r [<!ENTITY x \"{a}\">]>{good}"),
            "DTDs are not accepted",
        ),
        (
            good.replace("<Personalia>", "<Personalia><Naam>&x;</Naam>"),
            "entit",
        ),
        (
            format!("{}{}{}", "<w>".repeat(10_000), good, "</w>".repeat(10_000)),
            "nested deeper than 32",
        ),
        (
            good.replace(
                "<Repliek>",
                &format!(
                    "<Repliek {}>",
                    (0..100)
                        .map(|i| format!("xmlns:p{i}=\"urn:{i}\""))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
            "attributes or namespace declarations",
        ),
        (
            good.replace(
                "<Personalia>",
                &format!("<Personalia><Naam>{}</Naam>", "y".repeat(2 << 20)),
            ),
            "longer than",
        ),
        (
            good.trim_end_matches("</web:GeefDossierKBIResponse>")
                .to_string(),
            "truncated",
        ),
        (good.replace("</Repliek>", "</Repliekk>"), "not well-formed"),
    ];
    for (text, needle) in cases {
        let dir = tmp();
        let input = write(dir.path(), "a.xml", &text);
        let (output, out) = import(dir.path(), &[&input], &[]);
        assert_refused(dir.path(), &output, &out, &[&a]);
        let err = stderr(&output);
        assert!(
            err.contains("ERROR XML") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

#[test]
fn file_named_after_an_insz_is_masked() {
    let dir = tmp();
    let a = insz(12);
    let input = write(
        dir.path(),
        &format!("{a}.xml"),
        &exception_reply("99996", "FOUT"),
    );
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_refused(dir.path(), &output, &out, &[&a]);
    assert!(
        stderr(&output).contains("###########.xml"),
        "{}",
        stderr(&output)
    );
}

// ---------- facts and the employment-service list (M23, A12) ----------

/// A VL-2022 person with a contract and no employment-service registration.
fn contract_person(insz: &str) -> String {
    format!(
        "{}<Aanmelding><Type>EA</Type><DatumAanmelding>2023-02-01</DatumAanmelding></Aanmelding><Contracten><Contract><DatumRegistratie>2023-03-01</DatumRegistratie></Contract></Contracten>",
        obligated(insz, "2023-01-09")
    )
}

#[test]
fn employment_service_fact_decides_whether_a_missing_registration_counts() {
    let a = insz(13);
    let b = insz(14);
    let dir = tmp();
    let input = write(
        dir.path(),
        "a.xml",
        &format!(
            "{}{}",
            reply(&contract_person(&a)),
            reply(&contract_person(&b))
        ),
    );
    // Without the list: the register does not record the fact, no deadline, OK.
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json = answer(&out, &a, "2024-06-01");
    assert_eq!(json["result"], "OK", "{json}");
    std::fs::remove_file(&out).unwrap();

    // With the list (b registered, a not): the fact is recorded, a is NOK.
    let csv = write(
        dir.path(),
        "es.csv",
        &format!("insz,date\n{b},2023-03-20\n{},2023-04-01\n", insz(99)),
    );
    let (output, out) = import(
        dir.path(),
        &[&input],
        &["--employment-service", csv.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let facts = header(&out)["kbi_snapshot"]["facts"].clone();
    assert!(facts
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "EMPLOYMENT_SERVICE_REGISTRATION"));
    let json = answer(&out, &a, "2024-06-01");
    assert_eq!(json["result"], "NOK", "{json}");
    assert_eq!(
        json["reason"]["code"],
        "NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
    let json = answer(&out, &b, "2024-06-01");
    assert_eq!(json["result"], "OK", "{json}");
    let lines = person_lines(&out);
    let person_b = lines.iter().find(|p| p["insz"] == b).unwrap();
    assert!(person_b["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "EMPLOYMENT_SERVICE_REGISTRATION" && e["date"] == "2023-03-20"));
    let r = report(dir.path());
    assert_eq!(r["employment_service"]["lines"], 2);
    assert_eq!(r["employment_service"]["persons_with_dossier"], 1);
    assert_eq!(r["employment_service"]["lines_without_dossier"], 1);
    assert_eq!(
        header(&out)["kbi_snapshot"]["sources"][1]["kind"],
        "employment-service"
    );
}

#[test]
fn an_event_type_outside_facts_refuses_the_imported_file() {
    let dir = tmp();
    let a = insz(17);
    let input = write(dir.path(), "a.xml", &reply(&contract_person(&a)));
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Someone adds an employment-service registration by hand: the header says the source
    // does not record that type, so the file is refused.
    let text = std::fs::read_to_string(&out).unwrap().replace(
        "\"type\": \"CONTRACT_SIGNED\"}",
        "\"type\": \"CONTRACT_SIGNED\"}, {\"date\": \"2023-03-02\", \"type\": \"EMPLOYMENT_SERVICE_REGISTRATION\"}",
    );
    assert!(text.contains("EMPLOYMENT_SERVICE_REGISTRATION"));
    std::fs::write(&out, text).unwrap();
    let output = bin()
        .args(["snapshot", "validate"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("line 2"), "{}", stderr(&output));
    assert!(!stderr(&output).contains(&a));
}

#[test]
fn bad_employment_service_lines_refuse_the_import() {
    let dir = tmp();
    let a = insz(15);
    let input = write(dir.path(), "a.xml", &reply(&contract_person(&a)));
    let csv = write(
        dir.path(),
        "es.csv",
        &format!("insz,date\n{a},2023-02-30\n12345678901,2023-01-01\n"),
    );
    let (output, out) = import(
        dir.path(),
        &[&input],
        &["--employment-service", csv.to_str().unwrap()],
    );
    assert_refused(dir.path(), &output, &out, &[&a, "12345678901"]);
    let err = stderr(&output);
    assert!(
        err.contains("line 2") && err.contains("invalid date"),
        "{err}"
    );
    assert!(
        err.contains("line 3") && err.contains("invalid INSZ"),
        "{err}"
    );
}

#[test]
fn codes_file_replaces_the_shipped_lists() {
    let dir = tmp();
    let a = insz(16);
    let dossier = format!("{}<Inbreuken><Inbreuk><Type>7</Type><DatumVaststelling>2023-05-01</DatumVaststelling></Inbreuk></Inbreuken>", obligated(&a, "2022-01-03"));
    let input = write(dir.path(), "a.xml", &reply(&dossier));
    let (output, out) = import(dir.path(), &[&input], &[]);
    assert_refused(dir.path(), &output, &out, &[&a]);
    // A reviewed list that knows type 7.
    let shipped = std::fs::read_to_string("config/kbi-codes.toml").unwrap();
    let codes = write(
        dir.path(),
        "codes.csv",
        &shipped.replace(
            "\"5\" = \"ATTENDANCE\"",
            "\"5\" = \"ATTENDANCE\"\n\"7\" = \"ATTENDANCE\"",
        ),
    );
    let (output, out) = import(dir.path(), &[&input], &["--codes", codes.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        answer(&out, &a, "2023-06-01")["reason"]["code"],
        "ONVOLDOENDE_AANWEZIG"
    );
}

// ---------- files read in parallel (--workers) ----------

/// The report without what differs between two runs of the same input (time, output path).
fn comparable_report(dir: &Path) -> serde_json::Value {
    let mut r = report(dir);
    let map = r.as_object_mut().unwrap();
    map.remove("seconds");
    map.remove("out");
    r
}

/// stderr without the timing of the summary line and the progress bar's lines.
fn comparable_stderr(output: &Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("…"))
        .map(str::to_string)
        .collect()
}

/// Generated batches plus files of WARNings (more distinct messages than the report lists, so
/// the "(other messages)" count depends on the order they were met) and an employment-service
/// list; imported with one worker and with three: the same bytes and the same report.
#[test]
fn workers_give_the_same_snapshot_and_report_as_one_thread() {
    let src = tmp();
    let replies = src.path().join("replies");
    let status = bin()
        .args(["snapshot", "generate", "--format", "kbi-dossier-01.00"])
        .args(["--persons", "3000", "--seed", "5", "--per-file", "250"])
        .arg("--out")
        .arg(&replies)
        .status()
        .unwrap();
    assert!(status.success());
    for f in 0..8u32 {
        let mut text = String::from("<B>");
        for r in 0..10u32 {
            // 80 distinct messages (more than the 50 kept per row): the identificatie is
            // never quoted (issue 24, item 4), so the messages differ by its length.
            let code = "4".repeat((1 + f * 10 + r) as usize);
            text.push_str(
                &reply(&obligated(&insz(500 + f * 10 + r), "2022-01-03")).replace(
                    "</Inhoud>",
                    &format!("</Inhoud><Uitzonderingen><Uitzondering><Identificatie>{code}</Identificatie><Type>WAARSCHUWING</Type></Uitzondering></Uitzonderingen>"),
                ),
            );
        }
        text.push_str("</B>");
        write(&replies, &format!("warn-{f}.xml"), &text);
    }
    let expected = std::fs::read_to_string(replies.join("expected.jsonl")).unwrap();
    let mut csv = String::from("insz,date\n");
    for line in expected.lines().skip(1).step_by(97) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        csv.push_str(&format!("{},2023-05-02\n", v["insz"].as_str().unwrap()));
    }
    csv.push_str(&format!("{},2023-05-02\n", insz(999)));
    std::fs::remove_file(replies.join("expected.jsonl")).unwrap();
    let csv_path = write(src.path(), "es.csv", &csv);
    let mut runs = Vec::new();
    for workers in ["1", "3"] {
        let dir = tmp();
        let (output, out) = import(
            dir.path(),
            &[&replies],
            &[
                "--workers",
                workers,
                "--employment-service",
                csv_path.to_str().unwrap(),
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        runs.push((std::fs::read(&out).unwrap(), comparable_report(dir.path())));
    }
    let r = &runs[0].1;
    assert_eq!(r["files"], 20);
    assert!(r["persons"].as_u64().unwrap() > 2500, "{r}");
    assert!(
        r["warnings"]["M22"]["messages"]["(other messages)"].as_u64() > Some(0),
        "{r}"
    );
    assert!(
        r["employment_service"]["persons_with_dossier"].as_u64() > Some(10),
        "{r}"
    );
    assert_eq!(r["employment_service"]["lines_without_dossier"], 1, "{r}");
    assert!(runs[0].0 == runs[1].0, "the snapshots differ");
    assert_eq!(runs[0].1, runs[1].1);
}

/// ERRORs in several files, among them a duplicate INSZ across files: the refusal (messages in
/// file and reply order, counts) is the same with workers as with one thread.
#[test]
fn workers_refuse_like_one_thread_naming_the_second_occurrence() {
    let src = tmp();
    let a = insz(40);
    let b = insz(41);
    let ok = |n: u32| reply(&obligated(&insz(n), "2022-01-03"));
    let f1 = write(
        src.path(),
        "1.xml",
        &format!("<B>{}{}</B>", ok(42), reply(&obligated(&a, "2022-01-03"))),
    );
    let f2 = write(src.path(), "2.xml", &format!("<B>{}{}</B>", ok(43), ok(44)));
    let f3 = write(
        src.path(),
        "3.xml",
        &format!(
            "<B>{}{}{}</B>",
            reply(&obligated(&b, "2022-01-03")),
            exception_reply("99996", "FOUT"),
            reply(&obligated(&a, "2023-01-03"))
        ),
    );
    let f4 = write(src.path(), "4.xml", &format!("<B>{}<B>", ok(45)));
    let mut runs = Vec::new();
    for workers in ["1", "2", "4"] {
        let dir = tmp();
        let (output, out) = import(dir.path(), &[&f1, &f2, &f3, &f4], &["--workers", workers]);
        assert_refused(dir.path(), &output, &out, &[&a, &b]);
        runs.push((comparable_stderr(&output), comparable_report(dir.path())));
    }
    let errors = &runs[0].0;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("file 3") && errors[0].contains("reply 2"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("file 3")
            && errors[1].contains("reply 3")
            && errors[1].contains("same INSZ"),
        "{errors:?}"
    );
    assert!(errors[2].contains("XML file 4"), "{errors:?}");
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}
