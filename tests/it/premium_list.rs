//! The yearly reduced-premium list (`premium-list.md`), black-box and through the library:
//! same truth as the per-person answer, readable by the standard `age` tool, tamper-evident,
//! at most once a premium year, and all-or-nothing on disk.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use assert_cmd::Command;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use kbi_core::domain::{CompiledSnapshot, Question, Reference, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::{default_extracted_at, generate, GenerateOptions};
use kbi_core::snapshot::{load_bytes, load_path};
use kbi_premium::{
    list_file_name, manifest_file_name, signature_file_name, ExportRequest, FailPoint, Force,
    PremiumError,
};

const FIXTURE: &str = "tests/fixtures/public-snapshot.jsonl";

// ---------------------------------------------------------------------------------------------
// Helpers

fn rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::shipped())
}

fn fixture() -> CompiledSnapshot {
    load_path(Path::new(FIXTURE), rules(), &Silent).unwrap()
}

fn generated(
    persons: u64,
    seed: u64,
    extracted_at: DateTime<Utc>,
    with_examples: bool,
) -> CompiledSnapshot {
    let options = GenerateOptions {
        persons,
        seed,
        extracted_at,
        snapshot_id: Some(format!("gen-{seed}")),
        with_examples,
    };
    let mut bytes = Vec::new();
    generate(&options, &mut bytes).unwrap();
    load_bytes(bytes, rules(), &Silent).unwrap()
}

/// The reference: every INSZ of the snapshot for which `advise` (what `check --premium-year P`
/// runs) answers NOK. A person not in the snapshot answers OK, so no other INSZ can be NOK.
fn nok_by_advise(snapshot: &CompiledSnapshot, premium_year: i32) -> Vec<String> {
    snapshot
        .index
        .iter()
        .filter_map(|(insz, _)| {
            let question = Question {
                insz,
                reference: Reference::PremiumYear(premium_year),
            };
            match snapshot.advise(&question) {
                Ok(advice) if advice.result() == "NOK" => Some(insz.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn request(
    dir: &Path,
    premium_year: i32,
    recipients: &[age::x25519::Recipient],
    force: Force,
) -> ExportRequest {
    ExportRequest {
        premium_year,
        protocol: None,
        recipients: recipients.to_vec(),
        signing_key: signing_key(1),
        out_dir: dir.to_path_buf(),
        register: dir.join(kbi_premium::DEFAULT_REGISTER),
        operator: "tester".into(),
        force,
        fail_point: None,
    }
}

/// Decrypts in memory with the age library.
fn decrypt(path: &Path, identity: &age::x25519::Identity) -> String {
    let file = std::fs::File::open(path).unwrap();
    let decryptor = age::Decryptor::new(file).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    text
}

/// The INSZ lines of a plaintext, after checking its header.
fn lines_of(plaintext: &str) -> Vec<String> {
    let mut lines = plaintext.lines();
    assert_eq!(lines.next(), Some("insz"), "header line");
    assert!(plaintext.ends_with('\n'));
    lines.map(str::to_string).collect()
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("kbi-advice").unwrap();
    cmd.env_remove("USER");
    cmd
}

trait ExpectExit {
    /// Runs, expects exit status `code` and every one of `wanted` in stderr (in stdout when
    /// `code` is 0); returns stdout and stderr.
    fn expect_exit(&mut self, code: i32, wanted: &[&str]) -> (String, String);
}

impl ExpectExit for Command {
    fn expect_exit(&mut self, code: i32, wanted: &[&str]) -> (String, String) {
        expect(self, code, wanted)
    }
}

fn expect(cmd: &mut Command, code: i32, wanted: &[&str]) -> (String, String) {
    let output = cmd.output().unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let place = if code == 0 { &stdout } else { &stderr };
    for w in wanted {
        assert!(place.contains(w), "expected {w:?} in: {place}");
    }
    (stdout, stderr)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `age` command-line tool, or a failure that says how to get it (never a silent skip).
fn age_cli(tool: &str) -> std::process::Command {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "the `{tool}` command-line tool is missing: this interoperability test needs the Debian \
         package `age` (run scripts/setup/age.sh)"
    );
    std::process::Command::new(tool)
}

/// A key pair and an age identity on disk, as an operator and a recipient would have them.
struct Keys {
    dir: tempfile::TempDir,
    identity: age::x25519::Identity,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        bin()
            .args(["premium-list", "keygen", "--out-dir"])
            .arg(dir.path())
            .assert()
            .success();
        let identity = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        std::fs::write(
            dir.path().join("identity.txt"),
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
        Keys { dir, identity }
    }
    fn private(&self) -> PathBuf {
        self.dir.path().join("kbi-premium-signing.pem")
    }
    fn public(&self) -> PathBuf {
        self.dir.path().join("kbi-premium-signing.pub.pem")
    }
    fn identity_file(&self) -> PathBuf {
        self.dir.path().join("identity.txt")
    }
    fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }
}

fn export_cmd(snapshot: &str, year: &str, keys: &Keys, out: &Path) -> Command {
    export_cmd_signed_by(snapshot, year, keys, out, &keys.private())
}

fn export_cmd_signed_by(
    snapshot: &str,
    year: &str,
    keys: &Keys,
    out: &Path,
    signing_key: &Path,
) -> Command {
    let mut cmd = bin();
    cmd.args([
        "premium-list",
        "--snapshot",
        snapshot,
        "--premium-year",
        year,
    ])
    .args(["--recipient", &keys.recipient()])
    .arg("--signing-key")
    .arg(signing_key)
    .arg("--out")
    .arg(out)
    .args(["--operator", "alice"]);
    cmd
}

fn verify_cmd(dir: &Path, year: &str, keys: &Keys, with_identity: bool) -> Command {
    let mut cmd = bin();
    cmd.args(["premium-list", "verify", "--premium-year", year])
        .arg("--dir")
        .arg(dir)
        .arg("--public-key")
        .arg(keys.public());
    if with_identity {
        cmd.arg("--identity").arg(keys.identity_file());
    }
    cmd
}

fn register_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(kbi_premium::DEFAULT_REGISTER))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Same truth as the per-person answer

/// Exports through the library and returns the decrypted INSZ lines, or the refusal.
fn export_and_decrypt(
    snapshot: &CompiledSnapshot,
    year: i32,
) -> Result<(Vec<String>, kbi_premium::manifest::Manifest), PremiumError> {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let exported = request(dir.path(), year, &[identity.to_public()], Force::No)
        .prepare()?
        .run(snapshot, &Silent)?;
    let plaintext = decrypt(&exported.files[0], &identity);
    let report = kbi_premium::verify::verify(
        dir.path(),
        year,
        &signing_key(1).verifying_key(),
        Some(&[Box::new(identity) as Box<dyn age::Identity>]),
    )
    .unwrap();
    assert!(report.plaintext_checked);
    Ok((lines_of(&plaintext), exported.manifest))
}

/// The property of `premium-list.md`: the list is exactly the set of NOK answers. Where `advise`
/// refuses the date for everyone (30003 too far after extraction, 30004 before any rule set), the
/// export refuses too.
fn assert_list_is_nok_set(snapshot: &CompiledSnapshot, year: i32) -> Result<(), TestCaseError> {
    let expected = nok_by_advise(snapshot, year);
    let refused_by_advise = snapshot
        .refusal_on(kbi_core::domain::advice::premium_reference_date(year))
        .is_some();
    match export_and_decrypt(snapshot, year) {
        Ok((listed, manifest)) => {
            prop_assert!(
                !refused_by_advise,
                "premium year {year}: advise refuses the date"
            );
            prop_assert_eq!(&listed, &expected, "premium year {}", year);
            prop_assert_eq!(manifest.basis.count, expected.len() as u64);
            prop_assert_eq!(manifest.basis.premium_year, year);
        }
        Err(PremiumError::CannotAnswer { .. }) => {
            prop_assert!(refused_by_advise, "premium year {year}: export refused");
            // Then advise refuses every single question too.
            prop_assert!(expected.is_empty());
        }
        Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
    }
    Ok(())
}

#[test]
fn list_is_exactly_the_nok_answers_of_the_public_fixture() {
    let snapshot = fixture();
    for year in 2013..=2029 {
        assert_list_is_nok_set(&snapshot, year).unwrap();
    }
    // The fixture is not trivial for the year that matters.
    assert!(!nok_by_advise(&snapshot, 2027).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn list_is_exactly_the_nok_answers_of_generated_snapshots(
        seed in any::<u64>(),
        persons in 0u64..600,
        with_examples in any::<bool>(),
        extracted_days_back in 0i64..2000,
        year in 2013i32..=2029,
    ) {
        let extracted_at = default_extracted_at() - chrono::Duration::days(extracted_days_back);
        let snapshot = generated(persons, seed, extracted_at, with_examples);
        assert_list_is_nok_set(&snapshot, year)?;
    }
}

#[test]
fn larger_generated_snapshots_agree_for_every_premium_year() {
    for seed in [1, 2, 3] {
        let snapshot = generated(20_000, seed, default_extracted_at(), true);
        for year in 2022..=2027 {
            assert_list_is_nok_set(&snapshot, year).unwrap();
        }
        assert!(nok_by_advise(&snapshot, 2027).len() > 100);
    }
}

#[test]
fn an_empty_list_is_a_valid_list() {
    let snapshot = generated(0, 7, default_extracted_at(), false);
    let (listed, manifest) = export_and_decrypt(&snapshot, 2027).unwrap();
    assert!(listed.is_empty());
    assert_eq!(manifest.basis.count, 0);
}

// ---------------------------------------------------------------------------------------------
// End to end through the binary, decrypted by the standard `age` tool

#[test]
fn the_age_tool_decrypts_what_the_binary_exports_and_check_agrees() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let output = export_cmd(FIXTURE, "2027", &keys, out.path())
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        names_in(out.path()),
        BTreeSet::from([
            list_file_name(2027),
            manifest_file_name(2027),
            signature_file_name(2027),
            kbi_premium::DEFAULT_REGISTER.to_string(),
        ])
    );
    let decrypted = age_cli("age")
        .args(["--decrypt", "--identity"])
        .arg(keys.identity_file())
        .arg(out.path().join(list_file_name(2027)))
        .output()
        .unwrap();
    assert!(decrypted.status.success(), "{}", text(&decrypted.stderr));
    let listed = lines_of(&text(&decrypted.stdout));

    // Every person of the fixture, asked through `check --premium-year 2027`.
    let mut nok_by_check = Vec::new();
    for (insz, _) in fixture().index.iter() {
        let answer = bin()
            .args(["check", "--snapshot", FIXTURE, "--premium-year", "2027"])
            .args(["--insz", &insz.to_string()])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
        if json["result"] == "NOK" {
            nok_by_check.push(insz.to_string());
        }
    }
    assert!(!nok_by_check.is_empty());
    assert_eq!(listed, nok_by_check);

    // No INSZ in what the operator sees.
    let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
    for insz in &listed {
        assert!(!shown.contains(insz.as_str()), "an INSZ was printed");
    }
    // The recipient's check passes.
    verify_cmd(out.path(), "2027", &keys, true).expect_exit(0, &["OK: premium list 2027"]);
}

#[test]
fn every_recipient_can_decrypt_and_age_keygen_identities_work() {
    let keys = Keys::new();
    let generated_key = tempfile::tempdir().unwrap();
    let key_file = generated_key.path().join("key.txt");
    let made = age_cli("age-keygen")
        .arg("-o")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let public = age_cli("age-keygen")
        .arg("-y")
        .arg(&key_file)
        .output()
        .unwrap();
    let second = text(&public.stdout).trim().to_string();
    let recipients_file = generated_key.path().join("recipients.txt");
    std::fs::write(&recipients_file, format!("# VSB, second key\n{second}\n")).unwrap();

    let out = tempfile::tempdir().unwrap();
    export_cmd(FIXTURE, "2027", &keys, out.path())
        .arg("--recipients-file")
        .arg(&recipients_file)
        .assert()
        .success();
    let list = out.path().join(list_file_name(2027));
    let by_first = decrypt(&list, &keys.identity);
    let by_second = age_cli("age")
        .args(["-d", "-i"])
        .arg(&key_file)
        .arg(&list)
        .output()
        .unwrap();
    assert!(by_second.status.success(), "{}", text(&by_second.stderr));
    assert_eq!(text(&by_second.stdout), by_first);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join(manifest_file_name(2027))).unwrap())
            .unwrap();
    assert_eq!(manifest["recipients"].as_array().unwrap().len(), 2);
}

#[test]
fn date_of_1_january_is_accepted_and_names_the_next_premium_year() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args([
        "premium-list",
        "--snapshot",
        FIXTURE,
        "--date",
        "2026-01-01",
    ])
    .args(["--recipient", &keys.recipient(), "--operator", "alice"])
    .arg("--signing-key")
    .arg(keys.private())
    .arg("--out")
    .arg(out.path());
    cmd.assert().success();
    assert!(out.path().join(list_file_name(2027)).exists());
    verify_cmd(out.path(), "2027", &keys, true)
        .assert()
        .success();
}

#[test]
fn a_snapshot_published_in_redis_gives_the_same_list() {
    let redis = crate::support::redis::RedisServer::start();
    bin()
        .args(["snapshot", "publish", "--redis", &redis.url(), FIXTURE])
        .assert()
        .success();
    let keys = Keys::new();
    let from_file = tempfile::tempdir().unwrap();
    let from_redis = tempfile::tempdir().unwrap();
    export_cmd(FIXTURE, "2027", &keys, from_file.path())
        .assert()
        .success();
    export_cmd(&redis.url(), "2027", &keys, from_redis.path())
        .assert()
        .success();
    let read = |dir: &Path| decrypt(&dir.join(list_file_name(2027)), &keys.identity);
    assert_eq!(read(from_file.path()), read(from_redis.path()));
}

// ---------------------------------------------------------------------------------------------
// Tampering

fn exported_fixture(keys: &Keys) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    export_cmd(FIXTURE, "2027", keys, out.path())
        .assert()
        .success();
    verify_cmd(out.path(), "2027", keys, true)
        .assert()
        .success();
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn assert_verify_fails(dir: &Path, keys: &Keys, with_identity: bool, expected: &str) {
    let output: Output = verify_cmd(dir, "2027", keys, with_identity)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("FAILED: "), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn one_changed_byte_in_the_encrypted_list_fails_verify() {
    let keys = Keys::new();
    for at in [0usize, 100, usize::MAX] {
        let out = exported_fixture(&keys);
        flip_byte(&out.path().join(list_file_name(2027)), at);
        assert_verify_fails(out.path(), &keys, false, "was changed");
        assert_verify_fails(out.path(), &keys, true, "was changed");
    }
}

#[test]
fn one_changed_byte_in_the_manifest_fails_verify() {
    let keys = Keys::new();
    let manifest = manifest_file_name(2027);
    let length = {
        let out = exported_fixture(&keys);
        std::fs::read(out.path().join(&manifest)).unwrap().len()
    };
    for at in [0, length / 3, length / 2, length - 1] {
        let out = exported_fixture(&keys);
        flip_byte(&out.path().join(&manifest), at);
        assert_verify_fails(out.path(), &keys, true, "signature does not match");
    }
}

#[test]
fn a_signature_by_another_key_fails_verify() {
    let keys = Keys::new();
    let out = exported_fixture(&keys);
    let manifest = std::fs::read(out.path().join(manifest_file_name(2027))).unwrap();
    let other = SigningKey::from_bytes(&[42; 32]);
    std::fs::write(
        out.path().join(signature_file_name(2027)),
        kbi_signing::sign(&other, &manifest),
    )
    .unwrap();
    assert_verify_fails(out.path(), &keys, false, "signature does not match");
    // A damaged signature file is named as such.
    std::fs::write(out.path().join(signature_file_name(2027)), "AAAA\n").unwrap();
    assert_verify_fails(out.path(), &keys, false, "not the base64 of a 64-byte");
    // And a missing one.
    std::fs::remove_file(out.path().join(signature_file_name(2027))).unwrap();
    assert_verify_fails(out.path(), &keys, false, "cannot read");
}

/// A list that the signed manifest vouches for but that breaks the format (as a bug would make):
/// only decrypting finds it, and verify says which line.
#[test]
fn verify_with_an_identity_checks_the_list_itself() {
    let keys = Keys::new();
    let out = exported_fixture(&keys);
    let key_pem = std::fs::read_to_string(keys.private()).unwrap();
    let signing =
        <SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&key_pem).unwrap();
    let forge = |plaintext: &[u8], honest_plaintext_hash: bool| {
        let mut ciphertext = Vec::new();
        let recipient = keys.identity.to_public();
        let mut w = age::Encryptor::with_recipients(std::iter::once(&recipient as _))
            .unwrap()
            .wrap_output(&mut ciphertext)
            .unwrap();
        std::io::Write::write_all(&mut w, plaintext).unwrap();
        w.finish().unwrap();
        std::fs::write(out.path().join(list_file_name(2027)), &ciphertext).unwrap();
        let path = out.path().join(manifest_file_name(2027));
        let mut manifest =
            kbi_premium::manifest::Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
        use sha2::Digest;
        manifest.hashes.ciphertext_sha256 = hex::encode(sha2::Sha256::digest(&ciphertext));
        if honest_plaintext_hash {
            manifest.hashes.plaintext_sha256 = hex::encode(sha2::Sha256::digest(plaintext));
        }
        manifest.basis.count = 2;
        let bytes = manifest.to_bytes();
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(
            out.path().join(signature_file_name(2027)),
            kbi_signing::sign(&signing, &bytes),
        )
        .unwrap();
    };
    forge(b"insz\n85073003328\n80010110005\n", true);
    // Without the identity the files are consistent; with it, the order is wrong.
    verify_cmd(out.path(), "2027", &keys, false)
        .assert()
        .success();
    assert_verify_fails(out.path(), &keys, true, "line 3 is not above");
    forge(b"insz\n80010110005\n85073003328\n", false);
    assert_verify_fails(out.path(), &keys, true, "decrypted list's SHA-256");
    forge(b"insz\n80010110005\n85073003328\n", true);
    verify_cmd(out.path(), "2027", &keys, true)
        .assert()
        .success();
    // Another identity cannot decrypt.
    let stranger = tempfile::tempdir().unwrap();
    let stranger_key = stranger.path().join("key.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(
        &stranger_key,
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .as_bytes(),
    )
    .unwrap();
    let output = verify_cmd(out.path(), "2027", &keys, false)
        .arg("--identity")
        .arg(&stranger_key)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cannot decrypt"));
}

// ---------------------------------------------------------------------------------------------
// At most once a year

#[test]
fn a_second_export_for_the_same_premium_year_is_refused() {
    let keys = Keys::new();
    let out = exported_fixture(&keys);
    let before: Vec<(String, Vec<u8>)> = names_in(out.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out.path().join(&n)).unwrap()))
        .collect();
    export_cmd(FIXTURE, "2027", &keys, out.path()).expect_exit(
        2,
        &["premium year 2027 was already exported", "--force --reason"],
    );
    let after: Vec<(String, Vec<u8>)> = names_in(out.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out.path().join(&n)).unwrap()))
        .collect();
    assert_eq!(before, after, "a refused export changes nothing");
    assert_eq!(register_lines(out.path()).len(), 1);
    // Another premium year is another delivery.
    export_cmd(FIXTURE, "2026", &keys, out.path())
        .assert()
        .success();
    assert_eq!(register_lines(out.path()).len(), 2);
}

#[test]
fn force_needs_a_reason_and_the_reason_is_recorded() {
    let keys = Keys::new();
    let out = exported_fixture(&keys);
    for reason in [None, Some(""), Some("   ")] {
        let mut cmd = export_cmd(FIXTURE, "2027", &keys, out.path());
        cmd.arg("--force");
        if let Some(reason) = reason {
            cmd.args(["--reason", reason]);
        }
        cmd.expect_exit(2, &["--force needs --reason"]);
    }
    export_cmd(FIXTURE, "2027", &keys, out.path())
        .args(["--reason", "no force"])
        .expect_exit(2, &["--reason is only for"]);
    assert_eq!(register_lines(out.path()).len(), 1);

    let (_, stderr) = export_cmd(FIXTURE, "2027", &keys, out.path())
        .args([
            "--force",
            "--reason",
            "VSB lost the first delivery (ticket 123)",
        ])
        .expect_exit(0, &["premium list 2027"]);
    assert!(stderr.contains("already exported"), "{stderr}");
    let lines = register_lines(out.path());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["forced"], false);
    assert_eq!(lines[0]["reason"], serde_json::Value::Null);
    assert_eq!(lines[1]["forced"], true);
    assert_eq!(
        lines[1]["reason"],
        "VSB lost the first delivery (ticket 123)"
    );
    assert_eq!(lines[1]["operator"], "alice");
    assert_eq!(lines[1]["premium_year"], 2027);
    assert_eq!(lines[1]["reference_date"], "2026-01-01");
    verify_cmd(out.path(), "2027", &keys, true)
        .assert()
        .success();
    // The register's hashes are those of the files now in place.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join(manifest_file_name(2027))).unwrap())
            .unwrap();
    assert_eq!(lines[1]["ciphertext_sha256"], manifest["ciphertext_sha256"]);
    assert_eq!(lines[1]["plaintext_sha256"], manifest["plaintext_sha256"]);
}

#[test]
fn files_left_without_a_register_entry_stop_the_export() {
    let keys = Keys::new();
    let out = exported_fixture(&keys);
    std::fs::remove_file(out.path().join(kbi_premium::DEFAULT_REGISTER)).unwrap();
    export_cmd(FIXTURE, "2027", &keys, out.path()).expect_exit(2, &["already exist"]);
}

// ---------------------------------------------------------------------------------------------
// All or nothing

#[test]
fn an_injected_failure_at_any_step_leaves_nothing_behind() {
    let snapshot = fixture();
    let recipients = [age::x25519::Identity::generate().to_public()];
    for point in [
        FailPoint::AfterList,
        FailPoint::AfterFirstRename,
        FailPoint::RegisterAppend,
    ] {
        let dir = tempfile::tempdir().unwrap();
        // An earlier export of another year: the register must come out byte for byte the same.
        request(dir.path(), 2026, &recipients, Force::No)
            .prepare()
            .unwrap()
            .run(&snapshot, &Silent)
            .unwrap();
        let names = names_in(dir.path());
        let register = std::fs::read(dir.path().join(kbi_premium::DEFAULT_REGISTER)).unwrap();

        let mut failing = request(dir.path(), 2027, &recipients, Force::No);
        failing.fail_point = Some(point);
        let error = failing
            .prepare()
            .unwrap()
            .run(&snapshot, &Silent)
            .unwrap_err();
        assert!(
            matches!(error, PremiumError::Injected(p) if p == point),
            "{error}"
        );
        assert_eq!(names_in(dir.path()), names, "{point:?}: files left behind");
        assert_eq!(
            std::fs::read(dir.path().join(kbi_premium::DEFAULT_REGISTER)).unwrap(),
            register,
            "{point:?}: register changed"
        );
        // And the year can then be exported normally (no lock, no files in the way).
        request(dir.path(), 2027, &recipients, Force::No)
            .prepare()
            .unwrap()
            .run(&snapshot, &Silent)
            .unwrap();
    }
}

#[test]
fn a_snapshot_that_fails_to_load_leaves_nothing_behind() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let broken = out.path().join("broken.jsonl");
    let mut content = std::fs::read_to_string(FIXTURE).unwrap();
    content.push_str("{\"insz\": \"not an insz\", \"events\": []}\n");
    std::fs::write(&broken, content).unwrap();
    let before = names_in(out.path());
    export_cmd(broken.to_str().unwrap(), "2027", &keys, out.path())
        .expect_exit(2, &["loading snapshot"]);
    assert_eq!(names_in(out.path()), before);
}

#[test]
fn a_date_the_snapshot_cannot_answer_leaves_nothing_behind() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    // Premium 2029 → 2028-01-01, more than 31 days after the extraction of 2026-11-01 (30003).
    export_cmd(FIXTURE, "2029", &keys, out.path()).expect_exit(2, &["error 30003"]);
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn an_output_directory_that_cannot_take_the_files_is_refused_up_front() {
    let keys = Keys::new();
    let place = tempfile::tempdir().unwrap();
    let file = place.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    export_cmd(FIXTURE, "2027", &keys, &file).expect_exit(2, &["is not a directory"]);
    export_cmd(FIXTURE, "2027", &keys, &place.path().join("missing"))
        .expect_exit(2, &["does not exist"]);
    assert_eq!(names_in(place.path()), BTreeSet::from(["not-a-dir".into()]));
}

// ---------------------------------------------------------------------------------------------
// Clear errors

#[test]
fn a_date_that_is_not_1_january_is_refused() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args([
        "premium-list",
        "--snapshot",
        FIXTURE,
        "--date",
        "2026-03-01",
    ])
    .args(["--recipient", &keys.recipient(), "--operator", "alice"])
    .arg("--signing-key")
    .arg(keys.private())
    .arg("--out")
    .arg(out.path());
    cmd.expect_exit(2, &["--date 2026-03-01 is not a 1 January"]);
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn a_bad_recipient_is_named() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    export_cmd(FIXTURE, "2027", &keys, out.path())
        .args(["--recipient", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"])
        .expect_exit(2, &["--recipient #2 \"ssh-ed25519"]);
    export_cmd(FIXTURE, "2027", &keys, out.path())
        .args(["--recipient", "age1qqqq"])
        .expect_exit(
            2,
            &["--recipient #2 \"age1qqqq\": not an age X25519 public key"],
        );
    // A secret key given by mistake is refused and not echoed.
    use age::secrecy::ExposeSecret;
    let secret = keys.identity.to_string().expose_secret().to_string();
    let output = export_cmd(FIXTURE, "2027", &keys, out.path())
        .args(["--recipient", &secret])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("secret key"), "{stderr}");
    assert!(!stderr.contains(&secret[20..]), "the secret key was echoed");
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn a_missing_or_wrong_signing_key_is_named() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args([
        "premium-list",
        "--snapshot",
        FIXTURE,
        "--premium-year",
        "2027",
    ])
    .args([
        "--recipient",
        &keys.recipient(),
        "--operator",
        "alice",
        "--out",
    ])
    .arg(out.path());
    cmd.expect_exit(2, &["--signing-key"]);
    export_cmd_signed_by(
        FIXTURE,
        "2027",
        &keys,
        out.path(),
        &keys.dir.path().join("absent.pem"),
    )
    .expect_exit(2, &["cannot read signing key"]);
    export_cmd_signed_by(FIXTURE, "2027", &keys, out.path(), &keys.public())
        .expect_exit(2, &["is not an Ed25519 private key"]);
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn an_operator_is_required() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args([
        "premium-list",
        "--snapshot",
        FIXTURE,
        "--premium-year",
        "2027",
    ])
    .args(["--recipient", &keys.recipient()])
    .arg("--signing-key")
    .arg(keys.private())
    .arg("--out")
    .arg(out.path());
    cmd.expect_exit(2, &["--operator"]);
    // $USER is the default.
    cmd.env("USER", "bob").assert().success();
    assert_eq!(register_lines(out.path())[0]["operator"], "bob");
}

/// Persons whose period no regime covers answer 30004 on the reference date: neither OK nor NOK,
/// so not in the list, but counted in the manifest.
#[test]
fn persons_answered_30004_are_not_listed_but_counted() {
    let jsonl = r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "no-regime", "extracted_at": "2026-11-01T02:00:00Z", "persons": 3}}
{"insz": "80010110005", "events": [{"date": "2021-05-03", "type": "OBLIGATION_START", "region": "BXL"}]}
{"insz": "81020210201", "events": [{"date": "2024-03-01", "type": "OBLIGATION_START", "region": "VL"}]}
{"insz": "85073003328", "events": [{"date": "2012-02-01", "type": "OBLIGATION_START", "region": "VL"}]}
"#;
    let snapshot = load_bytes(jsonl.as_bytes().to_vec(), rules(), &Silent).unwrap();
    let refused: Vec<String> = snapshot
        .index
        .iter()
        .filter(|(insz, _)| {
            let question = Question {
                insz: *insz,
                reference: Reference::PremiumYear(2027),
            };
            matches!(snapshot.advise(&question), Err(r) if r.code.number() == 30004)
        })
        .map(|(insz, _)| insz.to_string())
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "the snapshot has two persons without regime"
    );
    assert_list_is_nok_set(&snapshot, 2027).unwrap();
    let (listed, manifest) = export_and_decrypt(&snapshot, 2027).unwrap();
    assert_eq!(listed, ["81020210201"]);
    assert_eq!(manifest.persons_without_rule_set, 2);
}

// ---------------------------------------------------------------------------------------------
// A killed export's leftovers (issue 14)

/// A process id that provably no longer runs: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_killed_export_leaves_a_lock_the_next_export_takes_over_with_its_temporary_files() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    // A snapshot that takes seconds to load, so the export can be killed while it holds the lock.
    let big = out.path().join("big.jsonl");
    bin()
        .args([
            "snapshot",
            "generate",
            "--persons",
            "300000",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&big)
        .assert()
        .success();
    let mut killed = std::process::Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args(["premium-list", "--snapshot"])
        .arg(&big)
        .args(["--premium-year", "2027", "--recipient", &keys.recipient()])
        .arg("--signing-key")
        .arg(keys.private())
        .arg("--out")
        .arg(out.path())
        .args(["--operator", "alice"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = out
        .path()
        .join(format!("{}.lock", kbi_premium::DEFAULT_REGISTER));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Until the lock names its holder: the export creates the file, then writes into it, and a
    // kill between the two leaves an empty lock (refused for the operator to judge, another
    // case). Seen once on a fast machine when this waited for the file only.
    while std::fs::read_to_string(&lock)
        .map_or(true, |holder| holder.split_whitespace().count() < 4)
    {
        assert!(std::time::Instant::now() < deadline, "no lock appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    killed.kill().unwrap(); // SIGKILL: no cleanup runs
    killed.wait().unwrap();
    std::fs::remove_file(&big).unwrap();
    let holder = std::fs::read_to_string(&lock).unwrap();
    let host = holder
        .split_whitespace()
        .nth(3)
        .expect("the lock names its host")
        .to_string();

    // Temporary files as a killed export leaves them (its pid, this host), and others that
    // cannot be proved dead or are not ours: those stay.
    let dead = dead_pid();
    let ours_dead = [
        format!(".kbi-reduced-premium-2027.csv.age.pid{dead}@{host}.Ab12Cd.tmp"),
        format!(".kbi-reduced-premium-2027.manifest.json.sig.pid{dead}@{host}.x9Y8z7.tmp"),
        format!(".probe.pid{}@{host}.Qw34Er.tmp", killed.id()),
    ];
    let kept = [
        // A process that runs (this test).
        format!(
            ".kbi-reduced-premium-2027.csv.age.pid{}@{host}.Ab12Cd.tmp",
            std::process::id()
        ),
        // Another host: its process ids mean nothing here.
        format!(".kbi-reduced-premium-2027.csv.age.pid{dead}@elsewhere.Ab12Cd.tmp"),
        // Not an export's name.
        format!(".notes.pid{dead}@{host}.Ab12Cd.tmp"),
        // The old naming, without a pid: not provable.
        ".kbi-reduced-premium-2027.csv.age.Ab12Cd.tmp".to_string(),
    ];
    for name in ours_dead.iter().chain(&kept) {
        std::fs::write(out.path().join(name), b"partial").unwrap();
    }

    let (_, stderr) = export_cmd(FIXTURE, "2027", &keys, out.path()).expect_exit(0, &[]);
    assert!(
        stderr.contains("took over the register lock of a killed export"),
        "{stderr}"
    );
    for name in &ours_dead {
        assert!(!out.path().join(name).exists(), "{name} was left");
        assert!(
            stderr.contains(name.as_str()),
            "{name} not reported: {stderr}"
        );
    }
    for name in &kept {
        assert!(out.path().join(name).exists(), "{name} was removed");
    }
    assert!(!lock.exists(), "the lock outlived the export");
    assert_eq!(register_lines(out.path()).len(), 1);
}

#[test]
fn a_lock_of_a_running_process_or_another_host_is_not_taken_over() {
    let keys = Keys::new();
    let out = tempfile::tempdir().unwrap();
    let lock = out
        .path()
        .join(format!("{}.lock", kbi_premium::DEFAULT_REGISTER));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for holder in [
        format!(
            "pid {} on {} since 2026-01-01T00:00:00Z\n",
            std::process::id(),
            host.trim()
        ),
        format!(
            "pid {} on elsewhere since 2026-01-01T00:00:00Z\n",
            dead_pid()
        ),
        format!("pid {} since 2026-01-01T00:00:00Z\n", dead_pid()),
    ] {
        std::fs::write(&lock, &holder).unwrap();
        export_cmd(FIXTURE, "2027", &keys, out.path())
            .expect_exit(2, &["another export holds the lock"]);
        assert_eq!(std::fs::read_to_string(&lock).unwrap(), holder);
    }
}
