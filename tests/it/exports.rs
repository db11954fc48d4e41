//! `kbi-advice export` through the binary (issue 22, `protocols.md` sections 3–7), the tests the
//! issue lists under "Tests that must be able to fail": the VDAB round trip end to end, the ABB
//! file's pseudonyms, a municipal list, the law that the yearly list's three roads give one set,
//! the law that a field the protocol does not list never leaves, the export register, and hostile
//! dossiers and join files.
//!
//! The dossiers are `tests/fixtures/exports/dossiers.xml`, written for these tests: each person's
//! case is named in its comment there, and its expected cells are written out below from the
//! dossier by hand (the derivations of `docs/exports.md`, "Fields"), never read back from the
//! program. Only the office → region list is read from the reviewed configuration
//! (`config/kbi-regions.toml`): which office lies in which region is the agency's to change.
//!
//! Every run is scraped for the INSZ of every fixture person: stdout, stderr, the report, the
//! manifest, the register and (except where the protocol sends the INSZ) the decrypted file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use age::secrecy::ExposeSecret;
use assert_cmd::Command;
use proptest::prelude::*;

const DOSSIERS: &str = "tests/fixtures/exports/dossiers.xml";
/// The fixture's extraction date, the reference date of the VDAB and ABB files.
const REFERENCE: &str = "2026-11-30";
/// The municipal list's reference date: some contracts and certificates come after it.
const MUNICIPAL_REFERENCE: &str = "2026-06-30";

// The fixture's persons (tests/fixtures/exports/dossiers.xml).
const P1: &str = "90011510185";
const P2: &str = "87063010390";
const P3: &str = "91113010513";
const P4: &str = "85030310757";
const P5: &str = "88022910910";
const P6: &str = "00031511171";
const P7: &str = "70101011360";
const P8: &str = "92040411576";
const P9: &str = "93050511772";
const P10: &str = "94060611968";
const P11: &str = "95070712164";
/// Answered 30001 (not in the register): no dossier.
const P12: &str = "96080812360";
const P13: &str = "86050512514";
/// Valid, never in any reply.
const NONE: &str = "89090912780";
/// Valid, in the agency's profile file only.
const EXTRA: &str = "84041412979";

const EVERY_INSZ: [&str; 15] = [
    P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, NONE, EXTRA,
];

/// Whom the VDAB `request` selects: subject on the reference date (P9 is entitled only, P10's
/// obligation ended, P12 has no dossier) with a contract since 2022-03-01 (P8's predates it, P11
/// has none).
const VDAB_POPULATION: [&str; 8] = [P1, P2, P3, P4, P5, P6, P7, P13];

const VDAB_COLUMNS: [&str; 6] = [
    "first_registration",
    "latest_registration",
    "jobseeker_category",
    "service_status",
    "action_types",
    "outflow_to_work",
];
const PROFILE_COLUMNS: [&str; 5] = [
    "education_level",
    "oldest_nationality",
    "language_learning_ability",
    "living_wage",
    "residence_status",
];

// ---------------------------------------------------------------------------------------------
// The binary, keys, files

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("kbi-advice").unwrap();
    cmd.env_remove("USER").env("USER", "tester");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn protocol(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/protocols")
        .join(name)
}

/// The agency's keys and the recipients' age identities, as docs/exports.md makes them.
struct Keys {
    dir: tempfile::TempDir,
    agency: age::x25519::Identity,
    vdab: age::x25519::Identity,
    reporting: age::x25519::Identity,
    abb: age::x25519::Identity,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        bin()
            .args(["premium-list", "keygen", "--out-dir"])
            .arg(dir.path())
            .assert()
            .success();
        let keys = Keys {
            agency: age::x25519::Identity::generate(),
            vdab: age::x25519::Identity::generate(),
            reporting: age::x25519::Identity::generate(),
            abb: age::x25519::Identity::generate(),
            dir,
        };
        std::fs::write(
            keys.agency_file(),
            format!("{}\n", keys.agency.to_string().expose_secret()),
        )
        .unwrap();
        let output = bin()
            .args(["protocol", "keygen", "--pseudonym"])
            .arg(keys.pseudonym_file())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "protocol keygen --pseudonym: {}",
            text(&output.stderr)
        );
        keys
    }
    fn signing(&self) -> PathBuf {
        self.dir.path().join("kbi-premium-signing.pem")
    }
    fn public(&self) -> PathBuf {
        self.dir.path().join("kbi-premium-signing.pub.pem")
    }
    fn agency_file(&self) -> PathBuf {
        self.dir.path().join("agency.key")
    }
    fn pseudonym_file(&self) -> PathBuf {
        self.dir.path().join("pseudonym.key")
    }
    fn pseudonym_key(&self) -> Vec<u8> {
        std::fs::read(self.pseudonym_file()).unwrap()
    }
}

/// `export --protocol P --file F DOSSIERS --reference-date D --signing-key … --out OUT --report
/// OUT/../report.json` plus `extra`.
fn export(
    keys: &Keys,
    protocol_file: &Path,
    file: &str,
    input: &Path,
    reference: &str,
    out: &Path,
    extra: &[&std::ffi::OsStr],
) -> Output {
    bin()
        .arg("export")
        .arg("--protocol")
        .arg(protocol_file)
        .args(["--file", file])
        .arg(input)
        .args(["--reference-date", reference])
        .arg("--signing-key")
        .arg(keys.signing())
        .arg("--out")
        .arg(out)
        .arg("--report")
        .arg(report_path(out))
        .args(extra)
        .output()
        .unwrap()
}

/// The report sits beside OUT, so that "nothing written in OUT" can be checked.
fn report_path(out: &Path) -> PathBuf {
    out.with_extension("report.json")
}

fn os(text: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(text)
}

fn fresh_out(parent: &Path, name: &str) -> PathBuf {
    let out = parent.join(name);
    std::fs::create_dir_all(&out).unwrap();
    out
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The one delivery file of OUT ending in `suffix` (`.csv.age`, `.manifest.json`, …).
fn delivered(out: &Path, suffix: &str) -> PathBuf {
    let found: Vec<String> = names_in(out)
        .into_iter()
        .filter(|n| n.ends_with(suffix) && !n.starts_with('.'))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {suffix} in {}: {found:?}",
        out.display()
    );
    out.join(&found[0])
}

fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Refused: a non-zero exit, every one of `wanted` in stderr, OUT as it was, no INSZ shown.
fn refused(output: &Output, out: &Path, before: &BTreeSet<String>, wanted: &[&str]) -> String {
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "must be refused\nstdout: {}\nstderr: {stderr}",
        text(&output.stdout)
    );
    for w in wanted {
        assert!(stderr.contains(w), "expected {w:?} in: {stderr}");
    }
    assert_eq!(
        &names_in(out),
        before,
        "a refused export changed OUT ({})",
        out.display()
    );
    assert_no_insz("stdout", &text(&output.stdout));
    assert_no_insz("stderr", &stderr);
    stderr
}

fn assert_no_insz(what: &str, haystack: &str) {
    for insz in EVERY_INSZ {
        assert!(
            !haystack.contains(insz),
            "an INSZ leaked into {what}:\n{haystack}"
        );
    }
}

/// stdout, stderr, the report, every manifest and the register of OUT: no INSZ.
fn assert_no_insz_around(output: &Output, out: &Path) {
    assert_no_insz("stdout", &text(&output.stdout));
    assert_no_insz("stderr", &text(&output.stderr));
    if let Ok(report) = std::fs::read_to_string(report_path(out)) {
        assert_no_insz("the report", &report);
    }
    for name in names_in(out) {
        if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".sig") {
            let content = std::fs::read_to_string(out.join(&name)).unwrap();
            assert_no_insz(&name, &content);
        }
    }
}

fn decrypt_with(path: &Path, identity: &dyn age::Identity) -> String {
    let file = std::fs::File::open(path).unwrap();
    let decryptor = age::Decryptor::new(file).unwrap();
    let mut reader = decryptor.decrypt(std::iter::once(identity)).unwrap();
    let mut plaintext = String::new();
    reader.read_to_string(&mut plaintext).unwrap();
    plaintext
}

fn encrypt_to(recipient: &age::x25519::Recipient, plaintext: &[u8]) -> Vec<u8> {
    let mut ciphertext = Vec::new();
    let mut writer = age::Encryptor::with_recipients(std::iter::once(recipient as _))
        .unwrap()
        .wrap_output(&mut ciphertext)
        .unwrap();
    writer.write_all(plaintext).unwrap();
    writer.finish().unwrap();
    ciphertext
}

/// A CSV delivery: its header and its rows (RFC 4180, read by the `csv` crate).
fn parse_csv(plaintext: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(plaintext.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn write_csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row).unwrap();
    }
    writer.into_inner().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `config/kbi-regions.toml`: the region of an office, as reviewed.
fn region_of(office: &str) -> String {
    let text = std::fs::read_to_string("config/kbi-regions.toml").unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["offices"][office]
        .as_str()
        .unwrap_or_else(|| panic!("office {office} is not in config/kbi-regions.toml"))
        .to_owned()
}

/// First 16 bytes of HMAC-SHA-256(key, INSZ), lower-case hex (`protocols.md` section 5).
fn pseudonym(key: &[u8], insz: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(insz.as_bytes());
    let tag = mac.finalize().into_bytes();
    tag[..16].iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// What the fixture's persons hold (by hand, from tests/fixtures/exports/dossiers.xml)

/// The register's profile of a person of the VDAB population on 2026-11-30, in the monitoring
/// file's order: age_category, sex, target_group, target_group_since, registration_date,
/// contract_date, kbi_region, plo_decision, plo_decision_reason, highest_nt2_level,
/// trajectory_type, diploma_equivalence_referral, diploma_equivalence_result; and, for the ABB
/// file, last_nt2_activity_date.
struct Profile {
    cells: [String; 13],
    last_nt2_activity: &'static str,
}

fn profile(insz: &str) -> Profile {
    let a = region_of("20101");
    let s = |v: &str| v.to_owned();
    let (cells, last_nt2_activity) = match insz {
        // Two PLO decisions: the later (NVO, 02) wins; the running course counts by its Begin
        // (no Einde); of two referrals the later (GD).
        P1 => (
            [
                s("35-44"),
                s("M"),
                s("PLICHT"),
                s("2023-01-10"),
                s("2023-02-01"),
                s("2023-03-01"),
                a,
                s("NVO"),
                s("02"),
                s("B1"),
                s("TT_IBVP"),
                s("2024-02-01"),
                s("GD"),
            ],
            "2024-09-01",
        ),
        // Earliest of two contracts; TT_IBRH is the latest integration trajectory (TT_NT2 is no
        // integration trajectory, TT_IBAS starts after the reference date, TT_IBLING has no
        // start); the dated NVT beats the undated VO and has no Reden; the course ending after
        // the reference date does not count.
        P2 => (
            [
                s("35-44"),
                s("M"),
                s("PLICHT"),
                s("2022-09-05"),
                s("2022-10-01"),
                s("2022-11-20"),
                a,
                s("NVT"),
                s(""),
                s(""),
                s("TT_IBRH"),
                s(""),
                s(""),
            ],
            "2025-08-31",
        ),
        // 35 on the reference date itself; the NVO of 2026-12-20 and the referral of
        // 2026-12-15 are after it.
        P3 => (
            [
                s("35-44"),
                s("M"),
                s("PLICHT"),
                s("2024-02-01"),
                s("2024-03-01"),
                s("2024-04-01"),
                a,
                s("VO"),
                s("03"),
                s("A2"),
                s("TT_IBVP"),
                s(""),
                s(""),
            ],
            "",
        ),
        P4 => (
            [
                s("35-44"),
                s("M"),
                s("RECHT_PLICHT"),
                s("2022-05-02"),
                s("2022-06-01"),
                s("2022-03-01"),
                a,
                s(""),
                s(""),
                s("C1"),
                s("TT_IBGD"),
                s("2023-05-05"),
                s("AN"),
            ],
            "2023-01-31",
        ),
        // Born 29 February 1988: 38.
        P5 => (
            [
                s("35-44"),
                s("M"),
                s("PLICHT"),
                s("2025-03-03"),
                s("2025-04-01"),
                s("2025-05-05"),
                a,
                s(""),
                s(""),
                s("B2"),
                s("TT_IBVP"),
                s(""),
                s(""),
            ],
            "",
        ),
        P6 => (
            [
                s("25-34"),
                s("V"),
                s("PLICHT"),
                s("2023-06-01"),
                s("2023-07-01"),
                s("2023-08-01"),
                region_of("40101"),
                s(""),
                s(""),
                s(""),
                s("TT_IBVP"),
                s(""),
                s(""),
            ],
            "",
        ),
        P7 => (
            [
                s("55-64"),
                s("M"),
                s("PLICHT"),
                s("2022-04-04"),
                s("2022-05-01"),
                s("2022-06-01"),
                region_of("70101"),
                s(""),
                s(""),
                s(""),
                s("TT_IBVP"),
                s(""),
                s(""),
            ],
            "",
        ),
        P13 => (
            [
                s("35-44"),
                s("M"),
                s("PLICHT"),
                s("2024-01-01"),
                s("2024-02-01"),
                s("2026-09-01"),
                a,
                s(""),
                s(""),
                s(""),
                s("TT_IBVP"),
                s(""),
                s(""),
            ],
            "",
        ),
        other => panic!("{other} is not in the VDAB population"),
    };
    Profile {
        cells,
        last_nt2_activity,
    }
}

/// VDAB's answer for a person (synthetic): a quoted comma, a non-ASCII letter, an empty cell.
fn vdab_cells(insz: &str) -> Vec<String> {
    let n = VDAB_POPULATION.iter().position(|p| *p == insz).unwrap();
    vec![
        format!("2023-0{}-01", n + 1),
        format!("2026-0{}-15", n + 1),
        format!("categorie {n}"),
        if n % 2 == 0 {
            "actief"
        } else {
            "geschorst, tijdelijk"
        }
        .to_owned(),
        format!("bemiddeling;opleiding;{}", "é".repeat(n)),
        if n == 2 {
            String::new()
        } else {
            ["ja", "nee"][n % 2].to_owned()
        },
    ]
}

/// VDAB returns every person it was sent except P7 (it does not know P7).
const VDAB_RETURNS: [&str; 7] = [P1, P2, P3, P4, P5, P6, P13];

fn vdab_answer(extra: Option<&str>) -> Vec<u8> {
    let mut rows = vec![std::iter::once("insz")
        .chain(VDAB_COLUMNS)
        .map(str::to_owned)
        .collect::<Vec<_>>()];
    for insz in VDAB_RETURNS {
        let mut row = vec![insz.to_owned()];
        row.extend(vdab_cells(insz));
        rows.push(row);
    }
    if let Some(never_sent) = extra {
        // Line 9: after the header and the seven returned persons.
        let mut row = vec![never_sent.to_owned()];
        row.extend(vdab_cells(P1));
        rows.push(row);
    }
    write_csv(&rows)
}

/// The agency's profile file: the population (P6 alone with its nationality, P7 with the
/// group's), more persons than the population, and one without a dossier.
fn profile_cells(insz: &str) -> Vec<String> {
    let nationality = if insz == P6 { "Marokko" } else { "Syrië" };
    vec![
        format!("ISCED{}", insz.as_bytes()[10] % 4),
        nationality.to_owned(),
        "gemiddeld".to_owned(),
        if insz == P2 { "ja" } else { "nee" }.to_owned(),
        "verblijfsvergunning".to_owned(),
    ]
}

fn profile_file() -> Vec<u8> {
    let mut rows = vec![std::iter::once("insz")
        .chain(PROFILE_COLUMNS)
        .map(str::to_owned)
        .collect::<Vec<_>>()];
    for insz in [P13, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, EXTRA] {
        let mut row = vec![insz.to_owned()];
        row.extend(profile_cells(insz));
        rows.push(row);
    }
    write_csv(&rows)
}

/// The header of a monitoring file: catalogue names, `NAME.COLUMN` for a join column.
fn monitoring_header(abb: bool) -> Vec<String> {
    let mut header: Vec<String> = Vec::new();
    if abb {
        header.push("pseudonym".into());
    }
    for name in [
        "age_category",
        "sex",
        "target_group",
        "target_group_since",
        "registration_date",
        "contract_date",
        "kbi_region",
        "plo_decision",
        "plo_decision_reason",
        "highest_nt2_level",
    ] {
        header.push(name.into());
    }
    if abb {
        header.push("last_nt2_activity_date".into());
    }
    for name in [
        "trajectory_type",
        "diploma_equivalence_referral",
        "diploma_equivalence_result",
    ] {
        header.push(name.into());
    }
    header.extend(VDAB_COLUMNS.iter().map(|c| format!("vdab.{c}")));
    header.extend(PROFILE_COLUMNS.iter().map(|c| format!("profile.{c}")));
    header
}

/// The expected row of a person in a monitoring file, before suppression.
fn monitoring_row(insz: &str, abb_key: Option<&[u8]>) -> Vec<String> {
    let p = profile(insz);
    let mut row: Vec<String> = Vec::new();
    if let Some(key) = abb_key {
        row.push(pseudonym(key, insz));
    }
    row.extend(p.cells[..10].iter().cloned());
    if abb_key.is_some() {
        row.push(p.last_nt2_activity.to_owned());
    }
    row.extend(p.cells[10..].iter().cloned());
    if VDAB_RETURNS.contains(&insz) {
        row.extend(vdab_cells(insz));
    } else {
        row.extend(vec![String::new(); VDAB_COLUMNS.len()]);
    }
    row.extend(profile_cells(insz));
    row
}

/// Small-cell suppression as `protocols.md` section 5 states it, over the expected rows: a
/// combination of the quasi-identifiers shared by fewer than `k` rows has them emptied. Returns
/// the number of cells emptied.
fn suppress(header: &[String], rows: &mut [Vec<String>], quasi: &[&str], k: usize) -> u64 {
    let columns: Vec<usize> = quasi
        .iter()
        .map(|q| header.iter().position(|h| h == q).unwrap())
        .collect();
    let key = |row: &Vec<String>| columns.iter().map(|&c| row[c].clone()).collect::<Vec<_>>();
    let mut counts: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for row in rows.iter() {
        *counts.entry(key(row)).or_default() += 1;
    }
    let mut emptied = 0;
    for row in rows.iter_mut() {
        if counts[&key(row)] < k {
            for &c in &columns {
                if !row[c].is_empty() {
                    row[c].clear();
                    emptied += 1;
                }
            }
        }
    }
    emptied
}

const QUASI: [&str; 4] = [
    "age_category",
    "sex",
    "kbi_region",
    "profile.oldest_nationality",
];

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

// ---------------------------------------------------------------------------------------------
// The VDAB round trip

/// Step 1: the request, as VDAB receives it.
fn vdab_request(keys: &Keys, work: &Path) -> PathBuf {
    let out = fresh_out(work, "request");
    let output = export(
        keys,
        &protocol("agii-vdab-3de-pijler.toml"),
        "request",
        Path::new(DOSSIERS),
        REFERENCE,
        &out,
        &[os("--recipient"), os(&keys.vdab.to_public().to_string())],
    );
    succeeded(&output, "export --file request");
    assert_no_insz_around(&output, &out);
    out
}

fn monitoring_args<'a>(keys: &'a Keys, vdab: &'a str, profile: &'a str) -> Vec<String> {
    vec![
        "--join".into(),
        format!("vdab={vdab}"),
        "--identity".into(),
        keys.agency_file().display().to_string(),
        "--join".into(),
        format!("profile={profile}"),
    ]
}

#[test]
fn vdab_round_trip_from_request_to_monitoring_file() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();

    // 1. The request: exactly the population's INSZ, one column, readable by VDAB's key only.
    let request_dir = vdab_request(&keys, work.path());
    let request = delivered(&request_dir, ".csv.age");
    let manifest = delivered(&request_dir, ".manifest.json");
    assert!(
        request
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("agii-vdab-3de-pijler-request-"),
        "{}",
        request.display()
    );
    let (header, rows) = parse_csv(&decrypt_with(&request, &keys.vdab));
    assert_eq!(header, ["insz"]);
    let sent: BTreeSet<String> = rows.into_iter().map(|r| r[0].clone()).collect();
    let expected: BTreeSet<String> = VDAB_POPULATION.iter().map(|s| s.to_string()).collect();
    assert_eq!(sent, expected, "the request's population");
    let manifest_json = json(&manifest);
    assert_eq!(manifest_json["rows"], 8, "{manifest_json}");
    let manifest_text = manifest_json.to_string();
    for needle in ["agii-vdab-3de-pijler", "request", REFERENCE, "six-monthly"] {
        assert!(
            manifest_text.contains(needle),
            "{needle} in {manifest_text}"
        );
    }
    // VDAB checks where it comes from.
    bin()
        .args(["export", "verify"])
        .arg(&manifest)
        .arg("--public-key")
        .arg(keys.public())
        .assert()
        .success();
    // Nobody else can read it.
    let other = age::x25519::Identity::generate();
    let decryptor = age::Decryptor::new(std::fs::File::open(&request).unwrap()).unwrap();
    assert!(decryptor
        .decrypt(std::iter::once(&other as &dyn age::Identity))
        .is_err());

    // 2. VDAB answers, encrypted to the agency; the agency's profile file is plain CSV.
    let answer = work.path().join("vdab-answer.csv.age");
    let profile = work.path().join("profile.csv");
    std::fs::write(&profile, profile_file()).unwrap();

    // 3a. An answer with an INSZ the request never sent (P8, in the register but not in the
    // population) is refused, naming the line, never the number; nothing is written.
    std::fs::write(
        &answer,
        encrypt_to(&keys.agency.to_public(), &vdab_answer(Some(P8))),
    )
    .unwrap();
    let out = fresh_out(work.path(), "monitoring");
    let args = monitoring_args(
        &keys,
        &answer.display().to_string(),
        &profile.display().to_string(),
    );
    let mut extra: Vec<&std::ffi::OsStr> = args.iter().map(|a| os(a)).collect();
    let reporting = keys.reporting.to_public().to_string();
    extra.extend([os("--recipient"), os(&reporting)]);
    let output = export(
        &keys,
        &protocol("agii-vdab-3de-pijler.toml"),
        "monitoring",
        Path::new(DOSSIERS),
        REFERENCE,
        &out,
        &extra,
    );
    refused(&output, &out, &BTreeSet::new(), &["vdab", "line 9"]);

    // 3b. Without it: the monitoring file.
    std::fs::write(
        &answer,
        encrypt_to(&keys.agency.to_public(), &vdab_answer(None)),
    )
    .unwrap();
    let output = export(
        &keys,
        &protocol("agii-vdab-3de-pijler.toml"),
        "monitoring",
        Path::new(DOSSIERS),
        REFERENCE,
        &out,
        &extra,
    );
    succeeded(&output, "export --file monitoring");
    assert_no_insz_around(&output, &out);
    let file = delivered(&out, ".csv.age");
    let plaintext = decrypt_with(&file, &keys.reporting);
    assert_no_insz("the monitoring file (identity removed)", &plaintext);
    let (header, rows) = parse_csv(&plaintext);
    let expected_header = monitoring_header(false);
    assert_eq!(
        header, expected_header,
        "the columns, in the protocol's order"
    );
    let mut expected: Vec<Vec<String>> = VDAB_POPULATION
        .iter()
        .map(|p| monitoring_row(p, None))
        .collect();
    let emptied = suppress(&expected_header, &mut expected, &QUASI, 5);
    // P6 and P7 are groups of one: their four quasi-identifiers are emptied.
    assert_eq!(emptied, 8);
    assert_eq!(sorted(rows), sorted(expected), "the rows");

    // The counts: in the manifest and in the report.
    let manifest = json(&delivered(&out, ".manifest.json"));
    assert_eq!(manifest["suppression"]["cells"], emptied, "{manifest}");
    assert_eq!(manifest["rows"], 8, "{manifest}");
    assert_eq!(manifest["identity"], "removed", "{manifest}");
    let report = json(&report_path(&out));
    assert_eq!(report["suppressed_cells"], emptied, "{report}");
    assert_eq!(report["suppressed_rows"], 2, "{report}");
    assert_eq!(report["rows"], 8, "{report}");
    // The reporting group checks origin, integrity and, decrypting in memory, the file itself.
    let reporting_key = work.path().join("reporting.key");
    std::fs::write(
        &reporting_key,
        format!("{}\n", keys.reporting.to_string().expose_secret()),
    )
    .unwrap();
    let output = bin()
        .args(["export", "verify"])
        .arg(delivered(&out, ".manifest.json"))
        .arg("--public-key")
        .arg(keys.public())
        .arg("--identity")
        .arg(&reporting_key)
        .output()
        .unwrap();
    succeeded(&output, "export verify --identity");
    assert!(
        text(&output.stdout).contains("OK"),
        "{}",
        text(&output.stdout)
    );
}

/// ABB's file: the VDAB monitoring file with `last_nt2_activity_date`, a keyed pseudonym in
/// front, stable across runs, different under another key; VDAB's file is not checked against
/// a request here (ABB's protocol sends none), so P8's row is simply not used.
#[test]
fn abb_monitoring_file_pseudonyms_are_keyed_and_stable_across_runs() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let answer = work.path().join("vdab-answer.csv.age");
    std::fs::write(
        &answer,
        encrypt_to(&keys.agency.to_public(), &vdab_answer(Some(P8))),
    )
    .unwrap();
    let profile = work.path().join("profile.csv");
    std::fs::write(&profile, profile_file()).unwrap();
    let args = monitoring_args(
        &keys,
        &answer.display().to_string(),
        &profile.display().to_string(),
    );
    let abb = keys.abb.to_public().to_string();
    let run = |name: &str, pseudonym_key: &Path| -> Vec<Vec<String>> {
        let out = fresh_out(work.path(), name);
        let mut extra: Vec<&std::ffi::OsStr> = args.iter().map(|a| os(a)).collect();
        extra.extend([
            os("--pseudonym-key"),
            pseudonym_key.as_os_str(),
            os("--recipient"),
            os(&abb),
        ]);
        let output = export(
            &keys,
            &protocol("agii-abb-3de-pijler.toml"),
            "monitoring",
            Path::new(DOSSIERS),
            REFERENCE,
            &out,
            &extra,
        );
        succeeded(&output, "export agii-abb-3de-pijler --file monitoring");
        assert_no_insz_around(&output, &out);
        let plaintext = decrypt_with(&delivered(&out, ".csv.age"), &keys.abb);
        assert_no_insz("the ABB file (pseudonymised)", &plaintext);
        let (header, rows) = parse_csv(&plaintext);
        assert_eq!(header, monitoring_header(true));
        let manifest = std::fs::read_to_string(delivered(&out, ".manifest.json")).unwrap();
        // The key's fingerprint (SHA-256, first 8 bytes), never the key.
        use sha2::Digest;
        let key = std::fs::read(pseudonym_key).unwrap();
        let fingerprint: String = sha2::Sha256::digest(&key)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let manifest_json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            manifest_json["pseudonym_key_fingerprint"], fingerprint,
            "{manifest}"
        );
        assert_eq!(manifest_json["retention_years"], 5, "{manifest}");
        let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !manifest.contains(&key_hex[..16]),
            "the key leaked: {manifest}"
        );
        rows
    };

    let first = run("abb-1", &keys.pseudonym_file());
    let key = keys.pseudonym_key();
    let header = monitoring_header(true);
    let mut expected: Vec<Vec<String>> = VDAB_POPULATION
        .iter()
        .map(|p| monitoring_row(p, Some(&key)))
        .collect();
    assert_eq!(suppress(&header, &mut expected, &QUASI, 5), 8);
    assert_eq!(sorted(first.clone()), sorted(expected), "the rows");

    // The next half-year's run (here: the same day, another register) gives the same pseudonyms.
    let second = run("abb-2", &keys.pseudonym_file());
    let pseudonyms =
        |rows: &[Vec<String>]| -> BTreeSet<String> { rows.iter().map(|r| r[0].clone()).collect() };
    assert_eq!(pseudonyms(&first), pseudonyms(&second));
    assert_eq!(pseudonyms(&first).len(), VDAB_POPULATION.len());

    // Another key: none of them.
    let other_key = work.path().join("other-pseudonym.key");
    bin()
        .args(["protocol", "keygen", "--pseudonym"])
        .arg(&other_key)
        .assert()
        .success();
    let third = run("abb-3", &other_key);
    assert!(pseudonyms(&first).is_disjoint(&pseudonyms(&third)));
}

// ---------------------------------------------------------------------------------------------
// A municipal list

#[test]
fn municipal_list_in_join_population_passphrase_and_derived_cells() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    // The city's residents: persons with and without a contract or certificate, one answered
    // 30001 (P12) and one never asked (NONE); P10 lives elsewhere.
    let residents = work.path().join("residents.csv");
    std::fs::write(
        &residents,
        format!("insz\n{P13}\n{P1}\n{NONE}\n{P9}\n{P12}\n{P11}\n{P8}\n"),
    )
    .unwrap();
    let passphrase_file = work.path().join("passphrase.txt");
    let out = fresh_out(work.path(), "mechelen");
    let output = export(
        &keys,
        &protocol("agii-gemeente.toml"),
        "residents",
        Path::new(DOSSIERS),
        MUNICIPAL_REFERENCE,
        &out,
        &[
            os("--join"),
            os(&format!("population={}", residents.display())),
            os("--passphrase-out"),
            passphrase_file.as_os_str(),
        ],
    );
    succeeded(&output, "export agii-gemeente --file residents");
    assert_no_insz_around(&output, &out);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&passphrase_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the passphrase file's mode");
    let passphrase = std::fs::read_to_string(&passphrase_file).unwrap();
    let passphrase = passphrase.trim_end_matches('\n');
    assert!(
        passphrase.len() >= 22,
        "a generated passphrase of at least 128 bits"
    );
    // The passphrase is not in OUT, nor on the terminal when written to a file.
    assert!(!text(&output.stdout).contains(passphrase));
    assert!(!text(&output.stderr).contains(passphrase));

    let file = delivered(&out, ".csv.age");
    let identity =
        age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_owned()));
    let plaintext = decrypt_with(&file, &identity);
    // The city opens it with the standard tool, typing the passphrase it received.
    assert_eq!(age_cli_decrypt(&file, passphrase, work.path()), plaintext);
    let (header, rows) = parse_csv(&plaintext);
    assert_eq!(header, ["insz", "contract_signed", "certificate_obtained"]);
    let row = |insz: &str, contract: &str, certificate: &str| {
        vec![insz.to_owned(), contract.to_owned(), certificate.to_owned()]
    };
    let expected = vec![
        // Contract 2023-03-01, certificate signed 2024-05-01.
        row(P1, "ja", "ja"),
        // Contract 2022-01-15, no certificate.
        row(P8, "ja", "nee"),
        // Certificate created 2026-06-01 but signed 2026-07-15: dated by its signature.
        row(P9, "ja", "nee"),
        row(P11, "nee", "nee"),
        // Contract 2026-09-01 after the reference date; certificate dated by its creation only.
        row(P13, "nee", "ja"),
    ];
    assert_eq!(sorted(rows), sorted(expected));

    // Another passphrase does not open it.
    let wrong = age::scrypt::Identity::new(age::secrecy::SecretString::from(
        "not the passphrase".to_owned(),
    ));
    let decryptor = age::Decryptor::new(std::fs::File::open(&file).unwrap()).unwrap();
    assert!(decryptor
        .decrypt(std::iter::once(&wrong as &dyn age::Identity))
        .is_err());
}

/// `age -d` given the passphrase on its terminal: age reads a passphrase only from a terminal,
/// so it runs under `script` (util-linux), which gives it a pseudo-terminal fed from our stdin.
/// A missing tool fails the test with how to get it, never skips it.
fn age_cli_decrypt(file: &Path, passphrase: &str, work: &Path) -> String {
    for (tool, package) in [
        ("age", "age (scripts/setup/age.sh)"),
        ("script", "bsdutils"),
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "`{tool}` is missing: this test needs the Debian package {package}"
        );
    }
    let plain = work.join("age-cli-plain.csv");
    let command = format!("age -d -o '{}' '{}'", plain.display(), file.display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "age -d: {}", text(&output.stdout));
    std::fs::read_to_string(&plain).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The register

fn register_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_second_six_monthly_delivery_is_refused_unless_forced_with_a_reason_which_is_recorded() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let out = fresh_out(work.path(), "request");
    let register = work.path().join("export-register.jsonl");
    let vdab = keys.vdab.to_public().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            os("--recipient"),
            os(&vdab),
            os("--register"),
            register.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| os(a)));
        export(
            &keys,
            &protocol("agii-vdab-3de-pijler.toml"),
            "request",
            Path::new(DOSSIERS),
            REFERENCE,
            &out,
            &args,
        )
    };
    succeeded(&run(&[]), "the first request of the half-year");
    assert_eq!(register_lines(&register).len(), 1);
    let files = names_in(&out);
    let ciphertext = std::fs::read(delivered(&out, ".csv.age")).unwrap();

    // The same half-year again: refused, the files untouched.
    let stderr = refused(&run(&[]), &out, &files, &["--force"]);
    assert!(
        stderr.contains("six-monthly") || stderr.contains("H2"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(delivered(&out, ".csv.age")).unwrap(),
        ciphertext
    );
    assert_eq!(register_lines(&register).len(), 1);
    // --force alone is not enough.
    refused(&run(&["--force"]), &out, &files, &["--reason"]);

    // Forced with a reason: delivered again, recorded with the reason.
    let reason = "VDAB lost the first delivery (ticket 4711)";
    succeeded(&run(&["--force", "--reason", reason]), "the forced request");
    let lines = register_lines(&register);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["forced"], true, "{}", lines[1]);
    assert_eq!(lines[1]["reason"], reason, "{}", lines[1]);
    assert_eq!(lines[0]["forced"], false, "{}", lines[0]);
    let register_text = std::fs::read_to_string(&register).unwrap();
    assert_no_insz("the register", &register_text);
    assert!(register_text.contains("agii-vdab-3de-pijler"));
}

/// Without a legal basis there is nothing to force: after an `ended`, outside the term, or for
/// a reference date outside the purpose's window, the delivery is refused with or without
/// `--force --reason`, and nothing is written.
#[test]
fn outside_the_legal_basis_the_delivery_is_refused_even_with_force() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(protocol("agii-vdab-3de-pijler.toml")).unwrap();
    let ended = shipped.replacen(
        "retention_years = 5\n",
        "retention_years = 5\nended = { on = 2026-01-01, reason = \"testeinde: decreet opgeheven\" }\n",
        1,
    );
    // The term ran out before today (the export's day) though the reference date lies inside.
    let expired = shipped.replacen(
        "term = { from = 2023-02-14 }",
        "term = { from = 2023-02-14, until = 2026-11-30 }",
        1,
    );
    assert_ne!(ended, shipped);
    assert_ne!(expired, shipped);
    let vdab = keys.vdab.to_public().to_string();
    let cases: [(&str, String, &str, &str, &str); 3] = [
        ("ended", ended, "request", REFERENCE, "testeinde"),
        ("term over", expired, "request", REFERENCE, "not in force"),
        // agii-vsb's reduced-premium purpose covers premium years from 2022: a reference date
        // of 2020-01-01 is premium year 2021.
        (
            "outside the window",
            std::fs::read_to_string(protocol("agii-vsb.toml")).unwrap(),
            "reduced-premium",
            "2020-01-01",
            "premium years from 2022",
        ),
    ];
    for (what, text, file, reference, needle) in cases {
        let protocol_file = work.path().join(format!("{}.toml", what.replace(' ', "-")));
        std::fs::write(&protocol_file, text).unwrap();
        let out = fresh_out(work.path(), what);
        for extra in [vec![], vec!["--force", "--reason", "the recipient insists"]] {
            let mut args = vec![os("--recipient"), os(&vdab)];
            args.extend(extra.iter().map(|a| os(a)));
            let output = export(
                &keys,
                &protocol_file,
                file,
                Path::new(DOSSIERS),
                reference,
                &out,
                &args,
            );
            let stderr = refused(&output, &out, &BTreeSet::new(), &[]);
            assert!(
                stderr.contains(needle),
                "{what} {extra:?}: expected {needle:?} in {stderr}"
            );
            if !extra.is_empty() {
                assert!(stderr.contains("nothing to force"), "{what}: {stderr}");
            }
        }
    }
}

#[test]
fn a_tampered_manifest_or_ciphertext_fails_export_verify() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let out = vdab_request(&keys, work.path());
    let manifest = delivered(&out, ".manifest.json");
    let ciphertext = delivered(&out, ".csv.age");
    let verify = |public: &Path| {
        bin()
            .args(["export", "verify"])
            .arg(&manifest)
            .arg("--public-key")
            .arg(public)
            .output()
            .unwrap()
    };
    succeeded(&verify(&keys.public()), "verify of an untouched delivery");

    // The manifest: one changed byte, still valid JSON.
    let original = std::fs::read(&manifest).unwrap();
    let text_manifest = String::from_utf8(original.clone()).unwrap();
    let tampered = text_manifest.replacen("six-monthly", "six-monthlz", 1);
    assert_ne!(tampered, text_manifest);
    std::fs::write(&manifest, tampered).unwrap();
    let output = verify(&keys.public());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("FAILED") || text(&output.stderr).contains("FAILED"));
    std::fs::write(&manifest, &original).unwrap();
    succeeded(
        &verify(&keys.public()),
        "verify after restoring the manifest",
    );

    // The ciphertext: one flipped bit at the end.
    let mut bytes = std::fs::read(&ciphertext).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&ciphertext, &bytes).unwrap();
    let output = verify(&keys.public());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    bytes[last] ^= 1;
    std::fs::write(&ciphertext, &bytes).unwrap();
    succeeded(
        &verify(&keys.public()),
        "verify after restoring the ciphertext",
    );

    // Another signing key.
    let other = tempfile::tempdir().unwrap();
    bin()
        .args(["premium-list", "keygen", "--out-dir"])
        .arg(other.path())
        .assert()
        .success();
    let output = verify(&other.path().join("kbi-premium-signing.pub.pem"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs: nothing written, a clear refusal

const WEB_NS: &str = "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be";

fn reply(inner: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie><Bericht><Type>ANTWOORD</Type><Tijdstip><Datum>2026-11-30</Datum><Tijd>02:00:00.000</Tijd></Tijdstip></Bericht></Context><Antwoorden><Antwoord><Referte>r</Referte><Inhoud><KBIDossier>{inner}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#
    )
}

fn obligated(insz: &str) -> String {
    format!(
        "<Personalia><INSZ>{insz}</INSZ></Personalia><Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2023-01-10</Begin></Periode></Doelgroep><Contracten><Contract><DatumRegistratie>2023-03-01</DatumRegistratie></Contract></Contracten><Aanmelding><Type>EA</Type><DatumAanmelding>2023-02-01</DatumAanmelding></Aanmelding>"
    )
}

#[test]
fn hostile_dossiers_are_refused_and_nothing_is_written() {
    let keys = Keys::new();
    let good = reply(&obligated(P1));
    let throttled = format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="{WEB_NS}"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie><Bericht><Type>ANTWOORD</Type><Tijdstip><Datum>2026-11-30</Datum><Tijd>02:00:00.000</Tijd></Tijdstip></Bericht></Context><Uitzonderingen><Uitzondering><Identificatie>99996</Identificatie><Oorsprong>MAGDA</Oorsprong><Type>FOUT</Type><Diagnose>Te veel gelijktijdige bevragingen</Diagnose></Uitzondering></Uitzonderingen></Repliek></web:GeefDossierKBIResponse>"#
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a DTD",
            format!("<!DOCTYPE r [<!ENTITY x \"{P1}\">]>{good}"),
            "DTDs are not accepted",
        ),
        (
            "nesting",
            format!("{}{good}{}", "<w>".repeat(10_000), "</w>".repeat(10_000)),
            "nested deeper",
        ),
        (
            "a throttled reply (99996)",
            format!("{good}{throttled}"),
            "M22",
        ),
        (
            "another service",
            good.replace("<Naam>GeefDossierKBI</Naam>", "<Naam>GeefPersoon</Naam>"),
            "another service",
        ),
        (
            "a duplicate dossier",
            format!("<Batch>{good}{}</Batch>", reply(&obligated(P1))),
            "same INSZ",
        ),
    ];
    let vdab = keys.vdab.to_public().to_string();
    for (what, body, needle) in cases {
        let work = tempfile::tempdir().unwrap();
        let input = work.path().join("hostile.xml");
        std::fs::write(&input, body).unwrap();
        let out = fresh_out(work.path(), "out");
        let output = export(
            &keys,
            &protocol("agii-vdab-3de-pijler.toml"),
            "request",
            &input,
            REFERENCE,
            &out,
            &[os("--recipient"), os(&vdab)],
        );
        let stderr = refused(&output, &out, &BTreeSet::new(), &[]);
        assert!(
            stderr.contains(needle),
            "{what}: expected {needle:?} in {stderr}"
        );
    }
}

/// A plain VDAB answer for the monitoring file with `line` (the file's 1-based line) replaced.
fn vdab_answer_with(line: usize, replacement: &[u8]) -> Vec<u8> {
    let plain = vdab_answer(None);
    let mut lines: Vec<&[u8]> = plain.split_inclusive(|b| *b == b'\n').collect();
    let mut owned = replacement.to_vec();
    owned.push(b'\n');
    lines[line - 1] = &owned;
    lines.concat()
}

#[test]
fn hostile_join_files_are_refused_naming_the_line_and_nothing_is_written() {
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("profile.csv");
    std::fs::write(&profile, profile_file()).unwrap();
    let reporting = keys.reporting.to_public().to_string();

    let row = |insz: &str, cells: &[&str]| -> Vec<u8> {
        let mut line = insz.as_bytes().to_vec();
        for c in cells {
            line.push(b',');
            line.extend_from_slice(c.as_bytes());
        }
        line
    };
    let six = ["a", "b", "c", "d", "e", "f"];
    let mut bad_utf8 = row(P2, &six);
    bad_utf8.extend_from_slice(b"\xff\xfe");
    let mut cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("bad UTF-8", vdab_answer_with(3, &bad_utf8), vec!["line 3"]),
        (
            "a control character",
            vdab_answer_with(4, &row(P3, &["a", "b\u{7}", "c", "d", "e", "f"])),
            vec!["line 4"],
        ),
        (
            "a missing column",
            vdab_answer_with(1, b"insz,first_registration,latest_registration,jobseeker_category,service_status,action_types"),
            vec!["header"],
        ),
        (
            "a renamed column",
            vdab_answer_with(1, b"insz,first_registration,latest_registration,jobseeker_category,service_status,action_types,uitstroom"),
            vec!["header"],
        ),
        (
            "an invalid INSZ",
            vdab_answer_with(5, &row("90011510186", &six)),
            vec!["line 5"],
        ),
        (
            "a duplicate INSZ",
            vdab_answer_with(6, &row(P1, &six)),
            vec!["line 6"],
        ),
        (
            "a cell over 200 bytes",
            vdab_answer_with(7, &row(P6, &["a", "b", "c", "d", &"x".repeat(201), "f"])),
            vec!["line 7"],
        ),
    ];
    // Every case must differ from the good answer (a case that silently equals it tests nothing).
    for (what, bytes, _) in &cases {
        assert_ne!(bytes, &vdab_answer(None), "{what}");
    }

    // A 1 GB line: the header, then one line of 1 GiB, most of it a hole in a sparse file (its
    // first 8 MiB written, so any line bound below that is met on real bytes).
    let huge = work.path().join("huge.csv");
    {
        let mut file = std::fs::File::create(&huge).unwrap();
        file.write_all(
            &vdab_answer(None)[..vdab_answer(None).iter().position(|b| *b == b'\n').unwrap() + 1],
        )
        .unwrap();
        file.write_all(P1.as_bytes()).unwrap();
        file.write_all(b",").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..8 {
            file.write_all(&chunk).unwrap();
        }
        file.set_len(1 << 30).unwrap();
    }
    cases.push(("a 1 GB line", Vec::new(), vec!["line 2"]));

    for (what, bytes, wanted) in cases {
        let join = if what == "a 1 GB line" {
            huge.clone()
        } else {
            let path = work.path().join("vdab.csv");
            std::fs::write(&path, &bytes).unwrap();
            path
        };
        let out = fresh_out(work.path(), "out");
        let vdab_arg = format!("vdab={}", join.display());
        let profile_arg = format!("profile={}", profile.display());
        let args = [
            os("--join"),
            os(&vdab_arg),
            os("--join"),
            os(&profile_arg),
            os("--recipient"),
            os(&reporting),
        ];
        let started = std::time::Instant::now();
        let output = export(
            &keys,
            &protocol("agii-vdab-3de-pijler.toml"),
            "monitoring",
            Path::new(DOSSIERS),
            REFERENCE,
            &out,
            &args,
        );
        let mut wanted = wanted;
        wanted.push("vdab");
        let stderr = refused(&output, &out, &BTreeSet::new(), &wanted);
        assert!(
            !stderr.contains("xxxxxxxx"),
            "{what}: the refusal shows the cell"
        );
        if what == "a 1 GB line" {
            // Bounded: the line is not read to its end.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{what}: {:?}",
                started.elapsed()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties over generated dossiers

/// Generated dossiers (`snapshot generate --format kbi-dossier-01.00`) in `dir/dossiers`.
fn generate_dossiers(dir: &Path, persons: u64, seed: u64) -> PathBuf {
    let dossiers = dir.join("dossiers");
    bin()
        .args(["snapshot", "generate", "--format", "kbi-dossier-01.00"])
        .args([
            "--persons",
            &persons.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--extracted-at", "2026-11-30T02:00:00Z", "--out"])
        .arg(&dossiers)
        .assert()
        .success();
    dossiers
}

/// The INSZ lines of a one-column `insz` plaintext.
fn insz_set(plaintext: &str) -> BTreeSet<String> {
    let (header, rows) = parse_csv(plaintext);
    assert_eq!(header, ["insz"]);
    rows.into_iter().map(|r| r[0].clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// The yearly list three ways: `export --file reduced-premium` of agii-vsb.toml on the
    /// dossiers, `premium-list` on their import, and the NOK answers the doors give (the
    /// library's `advise`, which both doors call) — one set.
    #[test]
    fn reduced_premium_export_equals_premium_list_and_the_nok_answers(
        persons in 40u64..160,
        seed in 1u64..10_000,
    ) {
        use std::sync::Arc;
        use kbi_core::domain::{Question, Reference, RuleSet};

        let keys = Keys::new();
        let work = tempfile::tempdir().unwrap();
        let dossiers = generate_dossiers(work.path(), persons, seed);

        // 1. The export (premium year 2027: reference date 2026-01-01).
        let out = fresh_out(work.path(), "export");
        let vsb = keys.vdab.to_public().to_string();
        let output = export(
            &keys,
            &protocol("agii-vsb.toml"),
            "reduced-premium",
            &dossiers,
            "2026-01-01",
            &out,
            &[os("--recipient"), os(&vsb)],
        );
        succeeded(&output, "export --file reduced-premium");
        let exported = insz_set(&decrypt_with(&delivered(&out, ".csv.age"), &keys.vdab));

        // 2. premium-list on the import of the same dossiers.
        let snapshot = work.path().join("snapshot.jsonl");
        bin()
            .args(["snapshot", "import", "--from", "kbi-dossier-01.00"])
            .arg(&dossiers)
            .arg("--out")
            .arg(&snapshot)
            .args(["--snapshot-id", "prop", "--extracted-at", "2026-11-30T02:00:00Z"])
            .assert()
            .success();
        let list_out = fresh_out(work.path(), "premium-list");
        bin()
            .args(["premium-list", "--snapshot"])
            .arg(&snapshot)
            .args(["--premium-year", "2027", "--recipient", &vsb])
            .arg("--signing-key")
            .arg(keys.signing())
            .arg("--out")
            .arg(&list_out)
            .assert()
            .success();
        let listed = insz_set(&decrypt_with(&delivered(&list_out, ".csv.age"), &keys.vdab));

        // 3. The doors' answers.
        let compiled = kbi_core::snapshot::load_path(
            &snapshot,
            Arc::new(RuleSet::shipped()),
            &kbi_core::io::Silent,
        )
        .unwrap();
        let nok: BTreeSet<String> = compiled
            .index
            .iter()
            .filter_map(|(insz, _)| {
                let question = Question { insz, reference: Reference::PremiumYear(2027) };
                match compiled.advise(&question) {
                    Ok(advice) if advice.result() == "NOK" => Some(insz.to_string()),
                    _ => None,
                }
            })
            .collect();

        prop_assert_eq!(&exported, &listed);
        prop_assert_eq!(&exported, &nok);
    }

    /// A field the protocol does not list never leaves: a file of a random part of the catalogue,
    /// pseudonymised, holds per person exactly the cells of those fields (compared, person by
    /// person, with a file of every field under identity `insz`), and no value of another field
    /// that none of the listed ones also holds.
    #[test]
    fn a_field_not_in_the_protocol_never_appears(
        persons in 30u64..120,
        seed in 1u64..10_000,
        picks in proptest::collection::vec(any::<bool>(), 17),
    ) {
        let catalogue = [
            "age_category", "sex", "target_group", "target_group_since", "registration_date",
            "contract_date", "contract_signed", "certificate_obtained", "trajectory_type",
            "kbi_office", "kbi_region", "plo_decision", "plo_decision_reason",
            "highest_nt2_level", "last_nt2_activity_date", "diploma_equivalence_referral",
            "diploma_equivalence_result",
        ];
        let listed: Vec<&str> = catalogue
            .iter()
            .zip(&picks)
            .filter_map(|(f, pick)| pick.then_some(*f))
            .collect();
        let quoted = |fields: &[&str]| {
            fields.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
        };
        let protocol_text = format!(
            r#"id = "test-fields"
title = "A protocol for the field law"
sender = "Agentschap Integratie en Inburgering"
recipient = "A test"
legal_basis = ["none: a test"]
term = {{ from = 2020-01-01 }}

[[files]]
id = "every-field"
period = "on-demand"
population = ["all"]
fields = ["insz", {all}]
identity = "insz"
encryption = "recipients"
age_bands = [18, 25, 35, 45, 55, 65]

[[files]]
id = "some-fields"
period = "on-demand"
population = ["all"]
fields = ["pseudonym"{sep}{some}]
identity = "pseudonym"
encryption = "recipients"
age_bands = [18, 25, 35, 45, 55, 65]
"#,
            all = quoted(&catalogue),
            sep = if listed.is_empty() { "" } else { ", " },
            some = quoted(&listed),
        );
        let keys = Keys::new();
        let work = tempfile::tempdir().unwrap();
        let protocol_file = work.path().join("test-fields.toml");
        std::fs::write(&protocol_file, protocol_text).unwrap();
        let dossiers = generate_dossiers(work.path(), persons, seed);
        let recipient = keys.reporting.to_public().to_string();
        let run = |file: &str, extra: &[&std::ffi::OsStr]| -> (Vec<String>, Vec<Vec<String>>) {
            let out = fresh_out(work.path(), file);
            let mut args = vec![os("--recipient"), os(&recipient)];
            args.extend_from_slice(extra);
            let output = export(&keys, &protocol_file, file, &dossiers, REFERENCE, &out, &args);
            succeeded(&output, file);
            parse_csv(&decrypt_with(&delivered(&out, ".csv.age"), &keys.reporting))
        };
        let (all_header, all_rows) = run("every-field", &[]);
        let pseudonym_key = keys.pseudonym_file();
        let (some_header, some_rows) =
            run("some-fields", &[os("--pseudonym-key"), pseudonym_key.as_os_str()]);

        let mut expected_header = vec!["pseudonym".to_owned()];
        expected_header.extend(listed.iter().map(|f| f.to_string()));
        prop_assert_eq!(&some_header, &expected_header);
        let mut expected_all_header = vec!["insz".to_owned()];
        expected_all_header.extend(catalogue.iter().map(|f| f.to_string()));
        prop_assert_eq!(&all_header, &expected_all_header);
        prop_assert_eq!(some_rows.len(), all_rows.len());

        // Person by person: exactly the listed fields' cells.
        let key = keys.pseudonym_key();
        let by_pseudonym: BTreeMap<String, &Vec<String>> = all_rows
            .iter()
            .map(|row| (pseudonym(&key, &row[0]), row))
            .collect();
        let column = |name: &str| all_header.iter().position(|h| h == name).unwrap();
        let mut listed_values: BTreeSet<&str> = BTreeSet::new();
        for row in &some_rows {
            let full = by_pseudonym.get(&row[0]);
            prop_assert!(full.is_some(), "a pseudonym of nobody in the population");
            let full = full.unwrap();
            prop_assert_eq!(row.len(), listed.len() + 1);
            for (i, field) in listed.iter().enumerate() {
                prop_assert_eq!(&row[i + 1], &full[column(field)], "{}", field);
                listed_values.insert(&row[i + 1]);
            }
        }
        // No other field's value, and no INSZ, anywhere in the file.
        let cells: BTreeSet<&str> = some_rows.iter().flatten().map(String::as_str).collect();
        for field in catalogue.iter().filter(|f| !listed.contains(f)) {
            for row in &all_rows {
                let value = row[column(field)].as_str();
                if !value.is_empty() && !listed_values.contains(value) {
                    prop_assert!(!cells.contains(value), "{} leaked: {}", field, value);
                }
            }
        }
        for row in &all_rows {
            prop_assert!(!cells.contains(row[0].as_str()), "an INSZ leaked");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The shipped protocol files

/// The three files of issue 22 pass `protocol check` together with the others (no two share an
/// id), `protocol show` explains the municipal list, and `--protocol ID` finds a shipped file
/// (compiled in) as `--protocol FILE` does.
#[test]
fn the_shipped_protocol_files_pass_check_and_are_found_by_id() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(protocol(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let output = bin()
        .args(["protocol", "check"])
        .args(&files)
        .output()
        .unwrap();
    succeeded(&output, "protocol check config/protocols/*.toml");
    let stdout = text(&output.stdout);
    for id in [
        "agii-vdab-3de-pijler",
        "agii-abb-3de-pijler",
        "agii-gemeente",
    ] {
        assert!(stdout.contains(&format!("ok (protocol {id})")), "{stdout}");
    }

    let output = bin()
        .args(["protocol", "show"])
        .arg(protocol("agii-gemeente.toml"))
        .args(["--on", "2026-12-03"])
        .output()
        .unwrap();
    succeeded(&output, "protocol show agii-gemeente.toml");
    let stdout = text(&output.stdout);
    for needle in [
        "in-join:population",
        "join population on insz: no columns",
        "passphrase",
    ] {
        assert!(stdout.contains(needle), "{needle} in {stdout}");
    }

    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let vdab = keys.vdab.to_public().to_string();
    let mut sets = Vec::new();
    for (name, protocol_arg) in [
        ("by-id", PathBuf::from("agii-vdab-3de-pijler")),
        ("by-file", protocol("agii-vdab-3de-pijler.toml")),
    ] {
        let out = fresh_out(work.path(), name);
        let output = bin()
            .env_remove("KBI_ADVICE__PROTOCOLS__DIR")
            .arg("export")
            .arg("--protocol")
            .arg(&protocol_arg)
            .args(["--file", "request", DOSSIERS, "--reference-date", REFERENCE])
            .args(["--recipient", &vdab])
            .arg("--signing-key")
            .arg(keys.signing())
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        succeeded(&output, name);
        sets.push(insz_set(&decrypt_with(
            &delivered(&out, ".csv.age"),
            &keys.vdab,
        )));
    }
    assert_eq!(sets[0], sets[1]);
    assert_eq!(sets[0].len(), VDAB_POPULATION.len());
}
