//! Issue 24, item 6: the signed audit checkpoints under a pinned key. The four forgeries of the
//! red team (checkpoints re-signed by another key, the `key` field edited, the checkpoints
//! removed, a format-2 checkpoint passed off as format 1), each after the log was cut before its
//! latest real checkpoint, and the service restarted on such a cut log (numbers never reused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::audit::{at, cli, files, lines, open, INSZ};
use chrono::NaiveDate;
use kbi_advice::telemetry::metrics::Metrics;
use kbi_audit::{
    AuditLog, AuditObserver, AuditOptions, AuditOutcome, AuditRecord, Checkpoint, ProblemKind,
    CHECKPOINT_FILE,
};
use kbi_core::domain::Insz;

fn record(n: usize) -> AuditRecord {
    AuditRecord {
        time: at(1, 10),
        server_reference: format!("srv-{n}"),
        client_id: "demo".into(),
        protocol: Some("demo".into()),
        sender: None,
        question_referte: None,
        insz: Some(Insz::parse(INSZ[n % 4]).unwrap()),
        reference_date: NaiveDate::from_ymd_opt(2026, 1, 1),
        outcome: AuditOutcome::Ok,
        found: Some(true),
        purpose: Some("care-budget".into()),
        snapshot_id: Some("snap-1".into()),
        rule_set: Some("2026.1".into()),
        seq: 0,
        prev: String::new(),
    }
}

/// The operator's key pair, kept apart from the log (`audit keygen`).
struct Keys {
    _dir: tempfile::TempDir,
    private: PathBuf,
    public: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let files = kbi_signing::generate_key_pair(dir.path(), "key").unwrap();
    Keys {
        private: files.private,
        public: files.public,
        _dir: dir,
    }
}

fn options(key: &Path, metrics: Option<Arc<dyn AuditObserver>>) -> AuditOptions {
    AuditOptions {
        segment_bytes: 1 << 20,
        checkpoint_key: Some(key.to_path_buf()),
        metrics,
        ..AuditOptions::default()
    }
}

/// Appends `n` records (numbered from `first`) and closes the log (which checkpoints); returns
/// the `seq` each record got.
fn session(dir: &Path, options: AuditOptions, first: usize, n: usize) -> (Vec<u64>, AuditLog) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = open(dir, options);
    let seqs = runtime.block_on(async {
        let mut seqs = Vec::new();
        for i in first..first + n {
            seqs.push(log.append(vec![record(i)]).await.unwrap().first_seq);
        }
        seqs
    });
    (seqs, log)
}

/// Two sessions of three records (checkpoints at 3 and 6), then the live segment cut to its
/// first `keep` records: what the red team left.
fn cut_log(base: &Path, name: &str, keys: &Keys, keep: usize) -> PathBuf {
    let dir = base.join(name);
    drop(session(&dir, options(&keys.private, None), 0, 3).1);
    drop(session(&dir, options(&keys.private, None), 3, 3).1);
    let checkpoints = read_checkpoints(&dir);
    assert_eq!(
        checkpoints.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [3, 6]
    );
    let path = files(&dir).pop().unwrap();
    let bytes: usize = lines(&path)[..keep].iter().map(|l| l.len() + 1).sum();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(bytes as u64)
        .unwrap();
    dir
}

fn read_checkpoints(dir: &Path) -> Vec<Checkpoint> {
    std::fs::read_to_string(dir.join(CHECKPOINT_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn write_checkpoints(dir: &Path, checkpoints: &[Checkpoint]) {
    let text: String = checkpoints
        .iter()
        .map(|c| serde_json::to_string(c).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join(CHECKPOINT_FILE), text).unwrap();
}

/// `audit verify --dir DIR [--public-key KEY]`: exit code and output.
fn verify(dir: &Path, pinned: Option<&Path>) -> (i32, String) {
    let mut command = cli();
    command.args(["audit", "verify", "--dir"]).arg(dir);
    if let Some(key) = pinned {
        command.arg("--public-key").arg(key);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The hash (hex) of record `seq`'s line, the last of the cut log, as a forger computes it.
fn line_hash(dir: &Path, seq: u64) -> String {
    let report = kbi_audit::verify(&files(dir));
    assert_eq!(report.last_seq, Some(seq));
    report.last_hash.unwrap()
}

#[test]
fn untouched_the_pinned_key_verifies_and_says_how_many_checkpoints() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "whole", &keys, 6);
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: intact"), "{out}");
    assert!(
        out.contains("checkpoints: 2 checked") && out.contains("2 signed by pinned key"),
        "{out}"
    );
    assert!(out.contains("latest: seq 6"), "{out}");
    // The writer signs format 2: the key is part of the signed message.
    assert!(read_checkpoints(&dir).iter().all(|c| c.v == 2));
}

#[test]
fn forgery_1_checkpoints_re_signed_by_another_key_fail_under_the_pinned_key() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "resigned", &keys, 4);
    // The forger signs a checkpoint for the cut log's end with a key of his own and puts his
    // public key beside the log.
    let forger = keys_in(base.path(), "forger");
    let hash = line_hash(&dir, 4);
    let mut forged = read_checkpoints(&dir)[0].clone();
    forged.seq = 4;
    forged.hash = hash;
    forged.key = kbi_signing::key_fingerprint(&forger.1.verifying_key());
    forged.signature = sign(&forger.1, &forged);
    write_checkpoints(&dir, &[forged]);
    std::fs::copy(&forger.0, kbi_audit::checkpoint::default_public_key(&dir)).unwrap();
    // Trusting the directory, the forgery passes (the key beside the log is the forger's)...
    let (code, out) = verify(&dir, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not pinned"), "{out}");
    // ...pinned to the real key, it fails.
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("not signed by the pinned key"), "{out}");
    assert!(out.contains("checkpoints: 1 checked"), "{out}");
}

#[test]
fn forgery_2_the_key_field_edited_fails_pinned_or_not() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "key-edited", &keys, 4);
    let mut checkpoints = read_checkpoints(&dir);
    for checkpoint in &mut checkpoints {
        checkpoint.key = "0".repeat(64);
    }
    write_checkpoints(&dir, &checkpoints);
    for pinned in [Some(keys.public.as_path()), None] {
        let (code, out) = verify(&dir, pinned);
        assert_eq!(code, 1, "pinned {pinned:?}: {out}");
        assert!(out.contains("`key` field was edited"), "{out}");
    }
    // The library says the same.
    let anchors = kbi_audit::Anchors::pinned(
        &dir.join(CHECKPOINT_FILE),
        std::slice::from_ref(&keys.public),
    )
    .unwrap();
    let report = kbi_audit::verify_anchored(&files(&dir), Some(&anchors));
    assert!(
        matches!(report.problem.unwrap().kind, ProblemKind::BadCheckpoint(_)),
        "a checkpoint that does not verify is a failure, not a skip"
    );
}

#[test]
fn forgery_3_no_checkpoint_left_fails_under_the_pinned_key() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "emptied", &keys, 4);
    std::fs::write(dir.join(CHECKPOINT_FILE), "").unwrap();
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no checkpoint is signed by the pinned key"),
        "{out}"
    );
    assert!(out.contains("checkpoints: 0 checked"), "{out}");
    // Removed altogether: the pinned key still has nothing to vouch with.
    std::fs::remove_file(dir.join(CHECKPOINT_FILE)).unwrap();
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 1, "{out}");
    // A pinned key with no checkpoints to check is a usage error, not a pass.
    let output = cli()
        .args(["audit", "verify", "--public-key"])
        .arg(&keys.public)
        .args(files(&dir))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn forgery_4_a_format_2_checkpoint_passed_off_as_format_1_fails() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "downgraded", &keys, 4);
    // Format 1 did not sign the key: the forger downgrades the lines and drops the latest one.
    let mut checkpoints = read_checkpoints(&dir);
    checkpoints.truncate(1);
    for checkpoint in &mut checkpoints {
        checkpoint.v = 1;
        checkpoint.key = "0".repeat(64);
    }
    write_checkpoints(&dir, &checkpoints);
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a valid signed checkpoint"), "{out}");
}

#[test]
fn old_format_1_checkpoints_still_verify_and_say_so() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "v1", &keys, 6);
    let key = kbi_signing::read_signing_key(&keys.private).unwrap();
    let mut checkpoints = read_checkpoints(&dir);
    for checkpoint in &mut checkpoints {
        checkpoint.v = 1;
        checkpoint.signature = sign(&key, checkpoint);
    }
    write_checkpoints(&dir, &checkpoints);
    for pinned in [None, Some(keys.public.as_path())] {
        let (code, out) = verify(&dir, pinned);
        assert_eq!(code, 0, "pinned {pinned:?}: {out}");
        assert!(
            out.contains("2 checkpoint(s) in the old format v1"),
            "{out}"
        );
    }
}

#[test]
fn restarted_on_a_log_cut_before_its_checkpoint_the_numbers_are_not_reused() {
    let base = tempfile::tempdir().unwrap();
    let keys = keys();
    let dir = cut_log(base.path(), "restart", &keys, 3);
    let metrics = Arc::new(Metrics::new(&["demo"]).unwrap());
    let observer: Arc<dyn AuditObserver> = metrics.clone();
    let (seqs, log) = session(&dir, options(&keys.private, Some(observer)), 10, 2);
    // Checkpoints vouched for 3 and 6; records 4..6 were cut: the next numbers are 7 and 8.
    assert_eq!(seqs, [7, 8]);
    assert_eq!(log.stats().records_missing_at_open, 3);
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l == "kbi_audit_records_missing_at_open 3"),
        "{text}"
    );
    drop(log);
    // The records the checkpoint vouched for stay missing in `verify`, across the jump.
    let (code, out) = verify(&dir, Some(&keys.public));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("vouched for record seq 6, which the chain does not hold"),
        "{out}"
    );
    let anchors = kbi_audit::Anchors::pinned(
        &dir.join(CHECKPOINT_FILE),
        std::slice::from_ref(&keys.public),
    )
    .unwrap();
    let report = kbi_audit::verify_anchored(&files(&dir), Some(&anchors));
    assert!(matches!(
        report.problem.unwrap().kind,
        ProblemKind::MissingAtCheckpoint { seq: 6, .. }
    ),);
    // A log that was not cut opens with nothing missing.
    let whole = cut_log(base.path(), "whole", &keys, 6);
    let metrics = Arc::new(Metrics::new(&["demo"]).unwrap());
    let observer: Arc<dyn AuditObserver> = metrics.clone();
    let (seqs, log) = session(&whole, options(&keys.private, Some(observer)), 10, 1);
    assert_eq!(seqs, [7]);
    assert_eq!(log.stats().records_missing_at_open, 0);
    assert!(metrics
        .render()
        .lines()
        .any(|l| l == "kbi_audit_records_missing_at_open 0"));
}

/// A forger's key pair: the public key file and the signing key.
fn keys_in(base: &Path, name: &str) -> (PathBuf, ed25519_dalek::SigningKey) {
    let files = kbi_signing::generate_key_pair(base, name).unwrap();
    (
        files.public,
        kbi_signing::read_signing_key(&files.private).unwrap(),
    )
}

fn sign(key: &ed25519_dalek::SigningKey, checkpoint: &Checkpoint) -> String {
    let signature = kbi_signing::sign(key, &checkpoint.message().unwrap());
    String::from_utf8(signature).unwrap().trim_end().to_owned()
}
