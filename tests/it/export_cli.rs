//! `kbi-advice export` through the binary, small and fast: the VDAB round trip in miniature
//! (request → the partner's encrypted answer → pseudonymised monitoring file), the register's
//! once-a-period rule and the refusals `--force` cannot lift, `export verify` against tampering,
//! and the yearly list written by `export --file reduced-premium` equal to `premium-list`'s.
//! The walks of docs/exports.md with the shipped protocol files are `tests/it/exports.rs`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr;

use assert_cmd::Command;
use chrono::{DateTime, Utc};

/// A protocol of the VDAB shape with a term that ends on a day the test chooses.
fn vdab_protocol(ended: Option<&str>) -> String {
    let ended = ended
        .map(|day| format!("ended = {{ on = {day}, reason = \"arrest\" }}\n"))
        .unwrap_or_default();
    format!(
        r#"id = "vdab-test"
title = "test"
sender = "AgII"
recipient = "VDAB"
legal_basis = ["test"]
term = {{ from = 2023-02-14 }}
retention_years = 5
{ended}
[[files]]
id = "request"
period = "six-monthly"
population = ["subject", "contract-since:2022-03-01"]
fields = ["insz"]
identity = "insz"
encryption = "recipients"

[[files]]
id = "monitoring"
period = "six-monthly"
population = ["subject", "contract-since:2022-03-01", "in-join:vdab"]
fields = ["pseudonym", "age_category", "sex", "kbi_region", "join:vdab.outflow_to_work"]
identity = "pseudonym"
encryption = "recipients"
age_bands = [18, 25, 35, 45, 55, 65]
min_group = 3
quasi_identifiers = ["age_category", "sex", "kbi_region"]

[[files.joins]]
name = "vdab"
key = "insz"
columns = ["outflow_to_work"]
returned_from = "request"
"#
    )
}

struct World {
    dir: tempfile::TempDir,
    vdab: age::x25519::Identity,
    agency: age::x25519::Identity,
}

impl World {
    fn new(persons: u64, extracted_at: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let options = kbi_import::generate::DossierOptions {
            persons,
            seed: 11,
            extracted_at: DateTime::parse_from_rfc3339(extracted_at)
                .unwrap()
                .with_timezone(&Utc),
            snapshot_id: Some("export-cli".into()),
            per_file: 200,
        };
        kbi_import::generate::write_dossiers(&options, &dir.path().join("dossiers")).unwrap();
        let keys = kbi_signing::generate_key_pair(dir.path(), "sign").unwrap();
        assert!(keys.private.exists());
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let vdab = age::x25519::Identity::generate();
        let agency = age::x25519::Identity::generate();
        std::fs::write(
            dir.path().join("agency.key"),
            format!(
                "{}\n",
                age::secrecy::ExposeSecret::expose_secret(&agency.to_string())
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("vdab.toml"), vdab_protocol(None)).unwrap();
        World { dir, vdab, agency }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn export(&self, file: &str, out: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("kbi-advice").unwrap();
        cmd.env_remove("USER")
            .args(["export", "--protocol"])
            .arg(self.path("vdab.toml"))
            .args(["--file", file, "--reference-date", "2026-06-30"])
            .arg(self.path("dossiers"))
            .arg("--signing-key")
            .arg(self.path("sign.pem"))
            .arg("--out")
            .arg(self.path(out))
            .args(["--operator", "tester", "--workers", "2"])
            .args(extra);
        cmd
    }
}

fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn decrypt(path: &Path, identity: &age::x25519::Identity) -> String {
    let file = std::fs::File::open(path).unwrap();
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file)).unwrap();
    let mut plain = String::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap()
        .read_to_string(&mut plain)
        .unwrap();
    plain
}

fn encrypt_to(recipient: &age::x25519::Recipient, plain: &[u8]) -> Vec<u8> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap();
    out
}

/// Every 11-digit run in `text`.
fn digit_runs(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 11)
        .map(str::to_owned)
        .collect()
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_vdab_round_trip_in_miniature() {
    let world = World::new(600, "2026-07-01T02:00:00Z");
    let vdab_key = world.vdab.to_public().to_string();
    let agency_key = world.agency.to_public().to_string();

    // 1. The request: INSZ of the population, to VDAB.
    let output = run(world.export("request", "out", &["--recipient", &vdab_key]));
    expect_ok(&output);
    let request = decrypt(
        &world.path("out/vdab-test-request-2026-H1.csv.age"),
        &world.vdab,
    );
    let sent: Vec<&str> = request.lines().skip(1).collect();
    assert_eq!(request.lines().next(), Some("insz"));
    assert!(sent.len() > 10, "a population to test with: {}", sent.len());
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "ascending, unique");
    for line in [text(&output.stdout), text(&output.stderr)] {
        assert!(digit_runs(&line).is_disjoint(&sent.iter().map(|s| s.to_string()).collect()));
    }

    // 2. VDAB answers, encrypted to the agency; one INSZ it was never sent is refused by line.
    let mut answer = String::from("insz,outflow_to_work\n");
    for (i, insz) in sent.iter().enumerate() {
        answer.push_str(&format!(
            "{insz},{}\n",
            if i % 2 == 0 { "ja" } else { "nee" }
        ));
    }
    let never_sent = "85073003328";
    assert!(!sent.contains(&never_sent));
    let with_stranger = format!("{answer}{never_sent},ja\n");
    std::fs::write(
        world.path("returned.csv.age"),
        encrypt_to(&world.agency.to_public(), with_stranger.as_bytes()),
    )
    .unwrap();
    let key = world.path("pseudonym.key");
    expect_ok(&run(Command::cargo_bin("kbi-advice")
        .unwrap()
        .args(["protocol", "keygen", "--pseudonym"])
        .arg(&key)));
    let monitoring = |out: &str| {
        let join = format!("vdab={}", world.path("returned.csv.age").display());
        let identity = world.path("agency.key").display().to_string();
        let key = key.display().to_string();
        run(world.export(
            "monitoring",
            out,
            &[
                "--join",
                &join,
                "--identity",
                &identity,
                "--pseudonym-key",
                &key,
                "--recipient",
                &agency_key,
            ],
        ))
    };
    let refused = monitoring("out");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    let stranger_line = sent.len() + 2;
    assert!(
        stderr.contains(&format!(
            "line {stranger_line}: an INSZ that is not in the population of file request"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(never_sent), "{stderr}");
    assert!(!files_in(&world.path("out"))
        .iter()
        .any(|f| f.contains("monitoring")));

    // 3. Without it: the monitoring file, pseudonymised, small cells suppressed.
    std::fs::write(
        world.path("returned.csv.age"),
        encrypt_to(&world.agency.to_public(), answer.as_bytes()),
    )
    .unwrap();
    let output = monitoring("out");
    expect_ok(&output);
    let plain = decrypt(
        &world.path("out/vdab-test-monitoring-2026-H1.csv.age"),
        &world.agency,
    );
    let mut lines = plain.lines();
    assert_eq!(
        lines.next(),
        Some("pseudonym,age_category,sex,kbi_region,vdab.outflow_to_work")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows.len(),
        sent.len(),
        "everyone sent was returned and is in the population"
    );
    for insz in &sent {
        assert!(!plain.contains(insz), "an INSZ in the monitoring file");
    }
    assert!(rows
        .iter()
        .all(|r| r[0].len() == 32 && r[0].bytes().all(|b| b.is_ascii_hexdigit())));
    // Groups of quasi-identifiers (non-empty ones) of at least min_group = 3.
    let mut groups = std::collections::BTreeMap::<(&str, &str, &str), u32>::new();
    for r in &rows {
        *groups.entry((r[1], r[2], r[3])).or_default() += 1;
    }
    for ((age, sex, region), n) in &groups {
        if !(age.is_empty() && sex.is_empty() && region.is_empty()) {
            assert!(*n >= 3, "group {age}/{sex}/{region} of {n}");
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(world.path("out/vdab-test-monitoring-2026-H1.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["identity"], "pseudonym");
    assert_eq!(manifest["retention_years"], 5);
    assert_eq!(manifest["rows"], rows.len() as u64);
    let fingerprint = manifest["pseudonym_key_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fingerprint.len(), 16);

    // Stable pseudonyms: the same delivery made again elsewhere is the same plaintext.
    std::fs::create_dir(world.path("again")).unwrap();
    expect_ok(&monitoring("again"));
    let again = decrypt(
        &world.path("again/vdab-test-monitoring-2026-H1.csv.age"),
        &world.agency,
    );
    assert_eq!(again, plain);

    // `export verify`: good, then a changed ciphertext, then a changed manifest.
    let manifest_path = world.path("out/vdab-test-monitoring-2026-H1.manifest.json");
    let verify = |extra: &[&str]| {
        run(Command::cargo_bin("kbi-advice")
            .unwrap()
            .args(["export", "verify"])
            .arg(&manifest_path)
            .arg("--public-key")
            .arg(world.path("sign.pub.pem"))
            .args(extra))
    };
    let identity = world.path("agency.key").display().to_string();
    expect_ok(&verify(&["--identity", &identity]));
    let data = world.path("out/vdab-test-monitoring-2026-H1.csv.age");
    let original = std::fs::read(&data).unwrap();
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(&data, &tampered).unwrap();
    let output = verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("was changed"),
        "{}",
        text(&output.stderr)
    );
    std::fs::write(&data, &original).unwrap();
    let bytes = std::fs::read(&manifest_path).unwrap();
    let changed = text(&bytes).replace("\"rows\": ", "\"rows\": 1");
    std::fs::write(&manifest_path, changed).unwrap();
    let output = verify(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("signature"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_register_refuses_a_second_delivery_unless_forced_and_never_after_an_end() {
    let world = World::new(200, "2026-07-01T02:00:00Z");
    let vdab_key = world.vdab.to_public().to_string();
    expect_ok(&run(world.export(
        "request",
        "out",
        &["--recipient", &vdab_key],
    )));
    let before = files_in(&world.path("out"));

    let again = run(world.export("request", "out", &["--recipient", &vdab_key]));
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already delivered for period 2026-H1"));
    assert_eq!(files_in(&world.path("out")), before, "nothing written");

    let no_reason = run(world.export("request", "out", &["--recipient", &vdab_key, "--force"]));
    assert!(!no_reason.status.success());
    assert!(text(&no_reason.stderr).contains("--reason"));

    let forced = run(world.export(
        "request",
        "out",
        &[
            "--recipient",
            &vdab_key,
            "--force",
            "--reason",
            "VDAB lost the file",
        ],
    ));
    expect_ok(&forced);
    let register = std::fs::read_to_string(world.path("out/export-register.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = register
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["forced"], true);
    assert_eq!(entries[1]["reason"], "VDAB lost the file");
    assert_eq!(entries[1]["period"], "2026-H1");
    assert_eq!(entries[1]["protocol"], "vdab-test");

    // Ended by law: refused, even forced, before anything is read.
    std::fs::write(world.path("vdab.toml"), vdab_protocol(Some("2026-07-20"))).unwrap();
    let ended = run(world.export(
        "request",
        "out",
        &["--recipient", &vdab_key, "--force", "--reason", "again"],
    ));
    assert_eq!(ended.status.code(), Some(1));
    let stderr = text(&ended.stderr);
    assert!(stderr.contains("ended on 2026-07-20"), "{stderr}");
    assert!(stderr.contains("--force does not change this"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(world.path("out/export-register.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn export_of_reduced_premium_equals_premium_list() {
    // Premium year 2027: the list of 1 January 2026, drawn from dossiers extracted that day.
    let world = World::new(800, "2026-01-01T00:00:00Z");
    let key = world.vdab.to_public().to_string();
    let mut cmd = Command::cargo_bin("kbi-advice").unwrap();
    cmd.env_remove("USER")
        .args(["export", "--protocol", "demo", "--file", "reduced-premium"])
        .args(["--premium-year", "2027"])
        .arg(world.path("dossiers"))
        .args(["--recipient", &key, "--operator", "tester", "--signing-key"])
        .arg(world.path("sign.pem"))
        .arg("--out")
        .arg(world.path("out"));
    expect_ok(&run(&mut cmd));
    std::fs::create_dir(world.path("list")).unwrap();
    // The same register: the export's delivery of period 2026 is premium year 2027's list.
    let premium_list = |extra: &[&str]| {
        let mut cmd = Command::cargo_bin("kbi-advice").unwrap();
        cmd.env_remove("USER")
            .args([
                "premium-list",
                "--protocol",
                "demo",
                "--premium-year",
                "2027",
            ])
            .arg("--snapshot")
            .arg(world.path("dossiers/expected.jsonl"))
            .args(["--recipient", &key, "--operator", "tester", "--signing-key"])
            .arg(world.path("sign.pem"))
            .arg("--out")
            .arg(world.path("list"))
            .arg("--register")
            .arg(world.path("out/export-register.jsonl"))
            .args(extra);
        run(cmd)
    };
    let refused = premium_list(&[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("premium year 2027 was already exported"),
        "{}",
        text(&refused.stderr)
    );
    expect_ok(&premium_list(&["--force", "--reason", "compare the two"]));
    let register = std::fs::read_to_string(world.path("out/export-register.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(register.lines().last().unwrap()).unwrap();
    assert_eq!(last["protocol"], "demo");
    assert_eq!(last["file"], "reduced-premium");
    assert_eq!(last["period"], "2026");
    assert_eq!(last["premium_year"], 2027);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(world.path("list/kbi-reduced-premium-2027.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["protocol"], "demo");
    assert_eq!(manifest["retention_years"], 5);
    let exported = decrypt(
        &world.path("out/demo-reduced-premium-2026.csv.age"),
        &world.vdab,
    );
    let listed = decrypt(
        &world.path("list/kbi-reduced-premium-2027.csv.age"),
        &world.vdab,
    );
    assert!(listed.lines().count() > 5, "a list to compare: {listed}");
    assert_eq!(exported, listed, "one engine, the same list, byte for byte");
    // Sanity: the list holds INSZ only.
    for line in listed.lines().skip(1) {
        kbi_core::domain::Insz::from_str(line).unwrap();
    }
}
