//! The audit log as a write-ahead log (issue 15) with signed checkpoints (issue 14): preallocated
//! segments written in place, what a crash leaves in them, rotation by size, stale spares, and
//! the checkpoints that anchor the end of the chain.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::support::audit::{at, cli, files, lines, open, INSZ};
use chrono::{DateTime, NaiveDate, Utc};
use kbi_advice::telemetry::metrics::Metrics;
use kbi_audit::{
    AuditLog, AuditOptions, AuditOutcome, AuditRecord, Checkpoint, ProblemKind, CHECKPOINT_FILE,
};
use kbi_core::domain::Insz;

fn record(time: DateTime<Utc>, n: usize) -> AuditRecord {
    AuditRecord {
        time,
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

fn options(segment_bytes: u64) -> AuditOptions {
    AuditOptions {
        segment_bytes,
        ..AuditOptions::default()
    }
}

/// Where a segment's records end (its first NUL, or its length).
fn data_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())
}

fn anchors(dir: &Path) -> kbi_audit::Anchors {
    kbi_audit::Anchors::load(
        &dir.join(CHECKPOINT_FILE),
        &kbi_audit::checkpoint::default_public_key(dir),
    )
    .unwrap()
}

/// Appends `n` records one by one (`first`.. as server references) and closes the log.
fn write_closed(dir: &Path, options: AuditOptions, first: usize, n: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = open(dir, options);
    runtime.block_on(async {
        for i in first..first + n {
            log.append(vec![record(at(1, 10), i)]).await.unwrap();
        }
    });
    drop(log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_preallocated_segments_verifies_with_the_count_written() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new(&["demo"]).unwrap());
    let log = AuditLog::open(
        dir.path(),
        AuditOptions {
            metrics: Some(metrics.clone()),
            ..options(16 * 1024)
        },
    )
    .unwrap();
    // 40 callers at once, and large appends that span several segments in one round.
    let tasks: Vec<_> = (0..40)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    log.append(vec![record(at(1, 9), t * 100 + i)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let big = (0..300).map(|i| record(at(1, 9), 10_000 + i)).collect();
    let receipt = log.append(big).await.unwrap();
    assert_eq!((receipt.first_seq, receipt.count), (801, 300));
    let stats = log.stats();
    assert_eq!(stats.records, 1100);
    assert!(
        stats.preallocated_segments >= 2,
        "segments come from prepared spares: {stats:?}"
    );
    let text = metrics.render();
    assert!(
        text.contains("kbi_audit_wait_seconds_count 801"),
        "one wait per append"
    );
    assert!(text.contains("kbi_audit_records_per_sync_sum 1100"));
    drop(log);

    let files = files(dir.path());
    assert!(files.len() > 10, "rotation at the size bound: {files:?}");
    let mut total = 0;
    for file in &files {
        let len = std::fs::metadata(file).unwrap().len();
        assert!(
            len <= 16 * 1024,
            "{} is {len} bytes, over the bound",
            file.display()
        );
        total += lines(file).len();
    }
    assert_eq!(total, 1100);
    let report = kbi_audit::verify_anchored(&files, Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 1100);
    assert!(
        report.preallocated_bytes > 0,
        "the last segment ends in zeros"
    );
    assert_eq!(
        report.checkpoints.unwrap().unanchored,
        0,
        "closed: anchored"
    );

    let out = cli()
        .args(["audit", "verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        out.starts_with(&format!(
            "OK: intact, 1100 records in {} file(s), seq 1..1100",
            files.len()
        )),
        "{out}"
    );
    assert!(out.contains("preallocated space follows"), "{out}");
    assert!(out.contains("latest: seq 1100"), "{out}");
}

#[test]
fn a_segment_torn_inside_its_preallocated_space_is_intact_up_to_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), options(64 * 1024), 0, 5);
    let path = files(dir.path()).pop().unwrap();
    let clean = std::fs::read(&path).unwrap();
    let end = data_end(&path);
    assert!(end < clean.len(), "the segment is preallocated");

    // Verify says so when the zeros follow whole records.
    let report = kbi_audit::verify(std::slice::from_ref(&path));
    assert!(report.is_ok());
    assert_eq!(report.preallocated_bytes, (clean.len() - end) as u64);

    // Killed mid-write: the next record's first half reached the disk, the rest is zeros.
    let mut torn = clean.clone();
    let half = br#"{"time":"2026-03-01T10:00:00.000Z","server_reference":"srv-5","client_id":"de"#;
    torn[end..end + half.len()].copy_from_slice(half);
    std::fs::write(&path, &torn).unwrap();
    let report = kbi_audit::verify(std::slice::from_ref(&path));
    assert_eq!(report.records, 5, "intact up to the last whole record");
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::Unterminated);
    assert_eq!((problem.line, problem.offset), (6, end as u64));
    assert!(problem.to_string().contains("torn record"), "{problem}");

    // Written out of order: a later page reached the disk, the one before did not.
    let mut holed = clean.clone();
    let later = end + 4096;
    holed[later..later + half.len()].copy_from_slice(half);
    std::fs::write(&path, &holed).unwrap();
    let report = kbi_audit::verify(std::slice::from_ref(&path));
    assert_eq!(report.records, 5);
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::AfterPreallocated);
    assert_eq!(problem.offset, later as u64);

    // The log sets the bytes aside, zeroes them, keeps the reservation and numbers on.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = open(dir.path(), options(64 * 1024));
    assert_eq!(std::fs::read(&path).unwrap(), clean);
    let receipt = runtime
        .block_on(log.append(vec![record(at(1, 11), 6)]))
        .unwrap();
    drop(log);
    assert!(
        receipt.first_seq >= 6 + (4096 / 128) as u64,
        "the numbers the torn region could hold are set aside: {receipt:?}"
    );
    let report = kbi_audit::verify_anchored(&files(dir.path()), Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 6);
    assert_eq!(report.skipped, vec![(6, receipt.first_seq - 1)]);
    let side = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains(".torn-")
        })
        .count();
    assert_eq!(side, 1);
}

#[test]
fn sequence_numbers_are_not_reused_after_repeated_torn_tails() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), options(64 * 1024), 0, 3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut seen = std::collections::HashSet::new();
    for round in 0..3 {
        // Each time a record half written, the process gone before its sync.
        let path = files(dir.path()).pop().unwrap();
        let torn_seq = {
            let last: AuditRecord = serde_json::from_str(lines(&path).last().unwrap()).unwrap();
            last.seq + 1
        };
        let mut bytes = std::fs::read(&path).unwrap();
        let end = data_end(&path);
        let half = br#"{"time":"2026-03-01T10:00:00.000Z","server_reference":"x","cl"#;
        bytes[end..end + half.len()].copy_from_slice(half);
        std::fs::write(&path, &bytes).unwrap();
        let log = open(dir.path(), options(64 * 1024));
        let receipt = runtime
            .block_on(log.append(vec![record(at(1, 12), 100 + round)]))
            .unwrap();
        drop(log);
        assert!(
            receipt.first_seq > torn_seq,
            "round {round}: seq {} was the torn record's",
            receipt.first_seq
        );
        assert!(seen.insert(receipt.first_seq));
    }
    let report = kbi_audit::verify_anchored(&files(dir.path()), Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 6);
    assert_eq!(report.skipped.len(), 3);
}

#[test]
fn a_stale_or_recycled_spare_never_brings_old_records_back() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), options(8 * 1024), 0, 30);
    let old_segments = files(dir.path());
    assert!(old_segments.len() >= 2);
    // A spare left behind that is really an old segment full of records (as if recycled without
    // zeroing): the log must never write "after" them.
    std::fs::copy(&old_segments[0], dir.path().join(".audit-spare")).unwrap();
    std::fs::copy(&old_segments[0], dir.path().join(".audit-spare.tmp")).unwrap();
    write_closed(dir.path(), options(8 * 1024), 30, 60);
    let files = files(dir.path());
    let report = kbi_audit::verify_anchored(&files, Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 90, "no old record came back");
    for file in &files[old_segments.len()..] {
        for line in lines(file) {
            let record: AuditRecord = serde_json::from_str(&line).unwrap();
            assert!(record.seq > 30, "{}: {line}", file.display());
        }
    }

    // And were old records to follow new ones in a segment, verify would see it: after the
    // zeros, or right after the last record (their seq and prev do not follow).
    let last = files.last().unwrap();
    let old: String = lines(&old_segments[0])[..2]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let old_data = old.as_bytes();
    let mut bytes = std::fs::read(last).unwrap();
    let end = data_end(last);
    let after_zeros = bytes.len() - old_data.len();
    assert!(after_zeros > end + 100, "room for zeros between");
    let mut fenced = bytes.clone();
    fenced[after_zeros..].copy_from_slice(old_data);
    std::fs::write(last, &fenced).unwrap();
    let problem = kbi_audit::verify(&files).problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::AfterPreallocated);
    bytes[end..end + old_data.len()].copy_from_slice(old_data);
    std::fs::write(last, &bytes).unwrap();
    let problem = kbi_audit::verify(&files).problem.unwrap();
    assert!(
        matches!(problem.kind, ProblemKind::Sequence { found: 1, .. }),
        "{problem}"
    );
}

/// A log of 6 records closed (so checkpointed), and a copy of its directory for each case.
fn checkpointed(base: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dir = base.join(name);
    write_closed(&dir, options(1 << 20), 0, 6);
    let path = files(&dir).pop().unwrap();
    (dir, path)
}

/// `audit keygen` into `base/keys`: the checkpoint key pair, as an operator makes it.
fn keygen(base: &Path) -> PathBuf {
    let keys = base.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    cli()
        .args(["audit", "keygen", "--out-dir"])
        .arg(&keys)
        .assert()
        .code(0);
    keys
}

fn verify_cli(dir: &Path) -> (i32, String) {
    let output = cli()
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn checkpoints_catch_the_last_record_edited_or_deleted_and_a_truncated_live_segment() {
    let base = tempfile::tempdir().unwrap();

    // Untouched: whole and anchored.
    let (dir, _) = checkpointed(base.path(), "untouched");
    let (code, out) = verify_cli(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("latest: seq 6"), "{out}");
    assert!(
        out.contains("0 record(s) after it not yet anchored"),
        "{out}"
    );

    // The last record edited in place (same length, so the zeros still follow).
    let (dir, path) = checkpointed(base.path(), "edited");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = data_end(&path);
    let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let at = text.rfind("\"srv-5\"").unwrap();
    bytes[at..at + 7].copy_from_slice(b"\"srv-X\"");
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        kbi_audit::verify(std::slice::from_ref(&path)).is_ok(),
        "the chain alone cannot see it"
    );
    let report = kbi_audit::verify_anchored(&files(&dir), Some(&anchors(&dir)));
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::CheckpointMismatch { seq: 6 });
    assert_eq!(problem.line, 6);
    let (code, out) = verify_cli(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("changed after the checkpoint"), "{out}");

    // The last record deleted (zeroed, as if never written).
    let (dir, path) = checkpointed(base.path(), "deleted");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = data_end(&path);
    let start = bytes[..end - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    bytes[start..end].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        kbi_audit::verify(std::slice::from_ref(&path)).is_ok(),
        "the chain alone cannot see it"
    );
    let problem = kbi_audit::verify_anchored(&files(&dir), Some(&anchors(&dir)))
        .problem
        .unwrap();
    assert!(
        matches!(
            problem.kind,
            ProblemKind::MissingAfterCheckpoint {
                last_seq: 5,
                checkpoint_seq: 6,
                ..
            }
        ),
        "{problem}"
    );
    let (code, out) = verify_cli(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record(s) 6..6 missing"), "{out}");

    // The live segment truncated to half its records.
    let (dir, path) = checkpointed(base.path(), "truncated");
    let keep: usize = lines(&path)[..3].iter().map(|l| l.len() + 1).sum();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(keep as u64)
        .unwrap();
    assert!(kbi_audit::verify(std::slice::from_ref(&path)).is_ok());
    let (code, out) = verify_cli(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record(s) 4..6 missing"), "{out}");

    // A checkpoint edited (to vouch for less) no longer carries a valid signature.
    let (dir, _) = checkpointed(base.path(), "forged");
    let cp_path = dir.join(CHECKPOINT_FILE);
    let text = std::fs::read_to_string(&cp_path).unwrap();
    let mut checkpoint: Checkpoint = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    checkpoint.seq = 5;
    std::fs::write(
        &cp_path,
        format!("{}\n", serde_json::to_string(&checkpoint).unwrap()),
    )
    .unwrap();
    let (code, out) = verify_cli(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a valid signed checkpoint"), "{out}");

    // Pinned to another public key, the directory's checkpoints are not trusted.
    let (dir, _) = checkpointed(base.path(), "other-key");
    let keys = keygen(base.path());
    let output = cli()
        .args(["audit", "verify", "--dir"])
        .arg(&dir)
        .arg("--public-key")
        .arg(keys.join("kbi-audit-checkpoint.pub.pem"))
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    // A checkpoint that does not verify under the pinned key is a failure, not a skip
    // (issue 24, item 6).
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("not signed by the pinned key"), "{out}");
}

#[test]
fn a_configured_key_signs_and_checkpoints_come_at_the_interval_and_at_rotation() {
    let base = tempfile::tempdir().unwrap();
    let keys = keygen(base.path());
    let dir = base.path().join("audit");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = AuditLog::open(
        &dir,
        AuditOptions {
            checkpoint_key: Some(keys.join("kbi-audit-checkpoint.pem")),
            checkpoint_interval: Duration::from_millis(50),
            ..options(8 * 1024)
        },
    )
    .unwrap();
    assert!(
        !dir.join("checkpoint-key.pem").exists(),
        "no key generated when one is configured"
    );
    runtime
        .block_on(log.append(vec![record(at(1, 10), 0)]))
        .unwrap();
    // The interval passes with the log open and idle: a checkpoint comes anyway.
    let cp_path = dir.join(CHECKPOINT_FILE);
    let mut waited = 0;
    while std::fs::read_to_string(&cp_path)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(waited < 100, "no checkpoint after 10 s");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    // Enough records for several rotations: a checkpoint at each.
    runtime.block_on(async {
        for i in 1..80 {
            log.append(vec![record(at(1, 10), i)]).await.unwrap();
        }
    });
    let rotations = files(&dir).len() - 1;
    assert!(rotations >= 3);
    drop(log);
    let checkpoints = std::fs::read_to_string(&cp_path).unwrap().lines().count();
    assert!(
        checkpoints > rotations,
        "{checkpoints} checkpoints for {rotations} rotations"
    );
    let anchors =
        kbi_audit::Anchors::load(&cp_path, &keys.join("kbi-audit-checkpoint.pub.pem")).unwrap();
    let report = kbi_audit::verify_anchored(&files(&dir), Some(&anchors));
    assert!(report.is_ok(), "{:?}", report.problem);
    let checkpoints = report.checkpoints.unwrap();
    assert_eq!(checkpoints.latest.unwrap().seq, 80);
    assert_eq!(checkpoints.other_key, 0);
}

const KILL_CHILD: &str = "KBI_AUDIT_SEGMENTS_KILL_CHILD_DIR";

/// SIGKILL while appending into preallocated segments: every acknowledged record is on disk,
/// and the directory verifies intact (the log reopens and goes on).
#[test]
fn killed_while_appending_every_acknowledged_record_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            // the name libtest gives it in the one test binary (module path, no crate name)
            "audit_segments::append_until_killed_in_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("acked ").map(str::to_owned))
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a plain kill of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let acked = reader.join().unwrap();
    assert!(acked.len() > 20, "too few appends before the kill");
    let written: std::collections::HashSet<String> = files(dir.path())
        .iter()
        .flat_map(|f| lines(f))
        .map(|l| {
            serde_json::from_str::<AuditRecord>(&l)
                .unwrap()
                .server_reference
        })
        .collect();
    let missing: Vec<_> = acked.iter().filter(|r| !written.contains(*r)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not on disk: {missing:?}"
    );
    let report = kbi_audit::verify_anchored(&files(dir.path()), Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    // Reopened, the chain goes on.
    write_closed(dir.path(), options(16 * 1024), 1_000_000, 3);
    let report = kbi_audit::verify_anchored(&files(dir.path()), Some(&anchors(dir.path())));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, written.len() as u64 + 3);
}

/// Runs only as the child of the test above (does nothing otherwise).
#[test]
fn append_until_killed_in_child() {
    let Some(dir) = std::env::var_os(KILL_CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = AuditLog::open(
        PathBuf::from(dir),
        AuditOptions {
            checkpoint_interval: Duration::from_millis(100),
            ..options(16 * 1024)
        },
    )
    .unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for t in 0..8 {
            let (log, tx) = (log.clone(), tx.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let n = t * 1_000_000 + i;
                    log.append(vec![record(at(1, 10), n)]).await.unwrap();
                    tx.send(format!("srv-{n}")).unwrap();
                }
            });
        }
        use std::io::Write;
        while let Some(reference) = rx.recv().await {
            let mut out = std::io::stdout().lock();
            writeln!(out, "acked {reference}").unwrap();
            out.flush().unwrap();
        }
    });
}
