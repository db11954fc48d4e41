//! The legal audit log (`security-and-audit.md`): durable, group-committed, hash-chained,
//! verified and searched — including the failure paths, injected in ways that also fail when
//! the tests run as root (root ignores directory permissions).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::audit::{at, cli, files, lines, INSZ};
use chrono::{DateTime, NaiveDate, Utc};
use kbi_advice::telemetry::metrics::Metrics;
use kbi_audit::{
    AuditError, AuditLog, AuditOptions, AuditOutcome, AuditRecord, ProblemKind, GENESIS_PREV,
};
use kbi_core::domain::magda::Sender;
use kbi_core::domain::{ErrorCode, Insz, ReasonCode};

fn record(time: DateTime<Utc>, insz: &str, n: usize) -> AuditRecord {
    AuditRecord {
        time,
        server_reference: format!("srv-{n}"),
        client_id: "demo".into(),
        protocol: Some("demo".into()),
        sender: Some(Sender {
            identificatie: "demo.kbi-advice".into(),
            referte: format!("req-{n}"),
            hoedanigheid: "9999".into(),
            gebruiker: (n % 2 == 0).then(|| "agent-7".into()),
        }),
        question_referte: Some(format!("q-{n}")),
        insz: Some(Insz::parse(insz).unwrap()),
        reference_date: NaiveDate::from_ymd_opt(2026, 1, 1),
        outcome: if n % 3 == 0 {
            AuditOutcome::Nok(ReasonCode::GeenContract)
        } else {
            AuditOutcome::Ok
        },
        found: Some(n % 2 == 0),
        purpose: Some("care-budget".into()),
        snapshot_id: Some("snap-1".into()),
        rule_set: Some("2026.1".into()),
        seq: 0,
        prev: String::new(),
    }
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// A log with `n` records on one day, closed again.
fn log_with(dir: &Path, n: usize) -> PathBuf {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = AuditLog::open(dir, options()).unwrap();
    runtime.block_on(async {
        for i in 0..n {
            log.append(vec![record(at(1, 10), INSZ[i % 4], i)])
                .await
                .unwrap();
        }
    });
    drop(log);
    files(dir).pop().unwrap()
}

/// Small preallocated segments: the same code path as production, less zero-filling.
fn options() -> AuditOptions {
    AuditOptions {
        segment_bytes: 256 * 1024,
        ..AuditOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_written_once_and_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    // One segment holds them all: the sync count below has no rotation in it.
    let options = AuditOptions {
        segment_bytes: 4 << 20,
        ..options()
    };
    let log = AuditLog::open(dir.path(), options).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(vec![record(at(1, 9), INSZ[i % 4], i)]).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        let receipt = task.await.unwrap().unwrap();
        assert_eq!(receipt.count, 1);
        seqs.push(receipt.first_seq);
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<u64>>(),
        "every seq exactly once"
    );

    let stats = log.stats();
    eprintln!(
        "200 concurrent appends: {} rounds, {} syncs, {:.1} records per sync",
        stats.batches,
        stats.fsyncs,
        stats.records as f64 / stats.fsyncs as f64
    );
    assert_eq!(stats.records, 200);
    assert_eq!(stats.failures, 0);
    // One data sync per round, plus one directory sync for the new day file.
    assert_eq!(stats.fsyncs, stats.batches + 1);
    assert!(
        stats.fsyncs <= 50,
        "group commit should share syncs between concurrent appends: {stats:?}"
    );

    // Sustained load: 50 callers, each appending 20 times in a row. New appends arrive while
    // the writer syncs, so each round carries whatever queued meanwhile.
    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let n = 200 + t * 20 + i;
                    log.append(vec![record(at(1, 10), INSZ[n % 4], n)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = log.stats();
    let syncs = after.fsyncs - stats.fsyncs;
    eprintln!(
        "50 callers x 20 appends: {} syncs, {:.1} records per sync",
        syncs,
        1000.0 / syncs as f64
    );
    assert_eq!(after.records, 1200);
    assert!(syncs < 500, "{after:?}");

    let files = files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(lines(&files[0]).len(), 1200);
    let report = kbi_audit::verify(&files);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 1200);
    assert!(report.starts_at_genesis());
    assert!(lines(&files[0])[0].contains(GENESIS_PREV));
}

/// A round of at most `inline_sync_records` records is synced by the writer thread itself and a
/// larger one by the syncer (0: all by the syncer); either way every append is answered once its
/// records are durable, and the chain is one.
#[tokio::test]
async fn small_rounds_are_synced_by_the_writer_and_large_ones_by_the_syncer() {
    for inline in [0, 64] {
        let dir = tempfile::tempdir().unwrap();
        let options = AuditOptions {
            inline_sync_records: inline,
            ..options()
        };
        let log = AuditLog::open(dir.path(), options).unwrap();
        // One after another: each append is a round of its own.
        for i in 0..10 {
            let receipt = log
                .append(vec![record(at(1, 9), INSZ[i % 4], i)])
                .await
                .unwrap();
            assert_eq!(receipt.first_seq, i as u64 + 1);
            assert_eq!(log.stats().records, i as u64 + 1, "answered once durable");
        }
        let batch = (10..110)
            .map(|i| record(at(1, 9), INSZ[i % 4], i))
            .collect();
        log.append(batch).await.unwrap();
        let stats = log.stats();
        assert_eq!((stats.records, stats.batches), (110, 11), "{stats:?}");
        let expected_inline = if inline == 0 { 0 } else { 10 };
        assert_eq!(stats.inline_batches, expected_inline, "{stats:?}");
        drop(log);
        let files = files(dir.path());
        let report = kbi_audit::verify(&files);
        assert!(report.is_ok(), "{:?}", report.problem);
        assert_eq!(report.records, 110);
    }
}

#[tokio::test]
async fn a_multi_record_append_is_consecutive() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), options()).unwrap();
    log.append(vec![record(at(1, 9), INSZ[0], 0)])
        .await
        .unwrap();
    let batch = (1..=5).map(|i| record(at(1, 9), INSZ[1], i)).collect();
    let receipt = log.append(batch).await.unwrap();
    assert_eq!((receipt.first_seq, receipt.count), (2, 5));
    let empty = log.append(Vec::new()).await.unwrap();
    assert_eq!(empty.count, 0);
}

#[tokio::test]
async fn rotation_across_two_days_keeps_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), options()).unwrap();
    for i in 0..3 {
        log.append(vec![record(at(1, 23), INSZ[0], i)])
            .await
            .unwrap();
    }
    for i in 3..6 {
        log.append(vec![record(at(2, 0), INSZ[1], i)])
            .await
            .unwrap();
    }
    // Stamped before midnight but arriving after the new day started: stays in the new file.
    log.append(vec![record(at(1, 23), INSZ[2], 6)])
        .await
        .unwrap();
    drop(log);

    let files = files(dir.path());
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["audit-2026-03-01.jsonl", "audit-2026-03-02.jsonl"]);
    assert_eq!(lines(&files[0]).len(), 3);
    assert_eq!(lines(&files[1]).len(), 4);
    let first_of_day_two: AuditRecord = serde_json::from_str(&lines(&files[1])[0]).unwrap();
    assert_eq!(first_of_day_two.seq, 4);
    assert_ne!(first_of_day_two.prev, GENESIS_PREV);
    let report = kbi_audit::verify(&files);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 7);

    // Reopened, the chain resumes from the newest file.
    let log = AuditLog::open(dir.path(), options()).unwrap();
    let receipt = log
        .append(vec![record(at(2, 8), INSZ[3], 7)])
        .await
        .unwrap();
    assert_eq!(receipt.first_seq, 8);
    drop(log);
    let report = kbi_audit::verify(&self::files(dir.path()));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 8);

    // Files given out of order are checked in date order; a missing day is a sequence gap.
    let reversed = vec![files[1].clone(), files[0].clone()];
    assert!(kbi_audit::verify(&reversed).is_ok());
    let report = kbi_audit::verify(&files[1..]);
    assert!(report.is_ok());
    assert!(!report.starts_at_genesis(), "day one not given");
}

#[test]
fn verify_detects_an_altered_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 6);
    let mut lines = lines(&path);
    lines[2] = lines[2].replace("\"client_id\":\"demo\"", "\"client_id\":\"other\"");
    write_lines(&path, &lines);
    let report = kbi_audit::verify(std::slice::from_ref(&path));
    let problem = report.problem.unwrap();
    assert_eq!(problem.line, 4, "seen at the record after the altered one");
    assert_eq!(problem.kind, ProblemKind::Chain { seq: 4 });
    assert_eq!(report.records, 3);
}

#[test]
fn verify_detects_a_deleted_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 6);
    let mut lines = lines(&path);
    lines.remove(3);
    write_lines(&path, &lines);
    let problem = kbi_audit::verify(&[path]).problem.unwrap();
    assert_eq!(problem.line, 4);
    assert_eq!(
        problem.kind,
        ProblemKind::Sequence {
            expected: 4,
            found: 5
        }
    );
}

#[test]
fn verify_detects_swapped_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 6);
    let mut lines = lines(&path);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    let problem = kbi_audit::verify(&[path]).problem.unwrap();
    assert_eq!(problem.line, 2);
    assert_eq!(
        problem.kind,
        ProblemKind::Sequence {
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn verify_detects_a_malformed_line_without_echoing_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 4);
    let mut lines = lines(&path);
    // The INSZ written as a number: serde would quote it in its message.
    lines[1] = lines[1].replace("\"insz\":\"00012556777\"", "\"insz\":12556777000");
    write_lines(&path, &lines);
    let problem = kbi_audit::verify(&[path]).problem.unwrap();
    assert_eq!(problem.line, 2);
    assert!(matches!(problem.kind, ProblemKind::Malformed(_)));
    assert!(!problem.to_string().contains("12556777000"), "{problem}");
}

#[test]
fn verify_detects_a_forged_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 2);
    let mut lines = lines(&path);
    lines[0] = lines[0].replace(GENESIS_PREV, &"1".repeat(64));
    write_lines(&path, &lines);
    let problem = kbi_audit::verify(&[path]).problem.unwrap();
    assert_eq!((problem.line, problem.kind), (1, ProblemKind::Genesis));
}

#[test]
fn cli_verify_reports_ok_and_the_first_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 5);
    let ok = cli().args(["audit", "verify"]).arg(&path).assert().code(0);
    let out = String::from_utf8(ok.get_output().stdout.clone()).unwrap();
    assert!(
        out.starts_with("OK: intact, 5 records in 1 file(s), seq 1..5"),
        "{out}"
    );
    cli()
        .args(["audit", "verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);

    for (name, edit) in [("edit", 0usize), ("delete", 1), ("swap", 2)] {
        let copy = dir.path().join(format!("case-{name}"));
        std::fs::create_dir_all(&copy).unwrap();
        let target = copy.join("audit-2026-03-01.jsonl");
        let mut lines = lines(&path);
        match edit {
            0 => lines[1] = lines[1].replace("\"srv-1\"", "\"srv-X\""),
            1 => {
                lines.remove(1);
            }
            _ => lines.swap(2, 3),
        }
        write_lines(&target, &lines);
        let failed = cli()
            .args(["audit", "verify"])
            .arg(&target)
            .assert()
            .code(1);
        let out = String::from_utf8(failed.get_output().stdout.clone()).unwrap();
        assert!(out.starts_with("FAILED: "), "{name}: {out}");
        assert!(
            out.contains("audit-2026-03-01.jsonl line "),
            "{name}: {out}"
        );
    }
}

#[test]
fn search_answers_who_consulted_whom_and_when() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = AuditLog::open(dir.path(), options()).unwrap();
    runtime.block_on(async {
        for day in 1..=3 {
            for (i, insz) in INSZ.iter().enumerate() {
                log.append(vec![record(at(day, 10), insz, i)])
                    .await
                    .unwrap();
            }
        }
    });
    drop(log);
    let insz = Insz::parse(INSZ[1]).unwrap();
    let all = kbi_audit::search(&files(dir.path()), insz, None, None).unwrap();
    assert_eq!(all.records.len(), 3);
    assert!(all.records.iter().all(|r| r.insz == Some(insz)));
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d);
    let some = kbi_audit::search(&files(dir.path()), insz, day(2), day(2)).unwrap();
    assert_eq!(some.records.len(), 1);
    assert_eq!(some.records[0].date(), day(2).unwrap());

    let json = cli()
        .args([
            "audit",
            "search",
            "--insz",
            "00.01.25-567.77",
            "--format",
            "json",
        ])
        .args(["--from", "2026-03-02", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    let out = String::from_utf8(json.get_output().stdout.clone()).unwrap();
    assert_eq!(out.lines().count(), 2);
    for line in out.lines() {
        let record: AuditRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.insz, Some(insz));
    }
    let table = cli()
        .args(["audit", "search", "--insz", INSZ[1], "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    let out = String::from_utf8(table.get_output().stdout.clone()).unwrap();
    assert!(out.starts_with("time "), "{out}");
    assert!(out.contains("demo.kbi-advice"), "{out}");
    assert!(out.trim_end().ends_with("3 record(s)"), "{out}");
    // A mistyped INSZ is refused without being echoed.
    let bad = cli()
        .args(["audit", "search", "--insz", "85073003329", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2);
    let err = String::from_utf8(bad.get_output().stderr.clone()).unwrap();
    assert!(!err.contains("85073003329"), "{err}");
}

#[tokio::test]
async fn torn_last_line_is_cut_kept_aside_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || log_with(&dir, 3)
    })
    .await
    .unwrap();
    // A crash in the middle of a write: half a line, no newline, written in place over the
    // segment's preallocated zeros.
    let full = std::fs::read(&path).unwrap();
    let end = full
        .iter()
        .position(|&b| b == 0)
        .expect("a preallocated segment");
    let torn = br#"{"time":"2026-03-01T10:00:00.000Z","server_reference":"srv-3","cli"#;
    let mut bytes = full.clone();
    bytes[end..end + torn.len()].copy_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        kbi_audit::verify(std::slice::from_ref(&path))
            .problem
            .unwrap()
            .kind,
        ProblemKind::Unterminated
    );

    let log = AuditLog::open(dir.path(), options()).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        full,
        "torn tail zeroed on open, the preallocated space kept"
    );
    let side: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("audit-2026-03-01.jsonl.torn-"))
        .collect();
    assert_eq!(side.len(), 1, "the torn bytes are kept aside");
    assert_eq!(std::fs::read(dir.path().join(&side[0])).unwrap(), torn);

    let receipt = log
        .append(vec![record(at(1, 11), INSZ[0], 3)])
        .await
        .unwrap();
    // The torn line was record 4: its number is never given to another record.
    assert!(receipt.first_seq > 4, "{receipt:?}");
    drop(log);
    let report = kbi_audit::verify(&files(dir.path()));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 4);
    assert_eq!(report.skipped, vec![(4, receipt.first_seq - 1)]);
}

#[test]
fn a_corrupt_last_complete_line_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with(dir.path(), 2);
    let mut lines = lines(&path);
    lines[1] = "{not json".into();
    write_lines(&path, &lines);
    let error = AuditLog::open(dir.path(), options()).unwrap_err();
    assert!(matches!(error, AuditError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("audit verify"), "{error}");
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditLog::open(dir.path(), options()).unwrap();
    let second = AuditLog::open(dir.path(), options()).unwrap_err();
    assert!(matches!(second, AuditError::Locked { .. }), "{second}");
    drop(first);
    AuditLog::open(dir.path(), options()).unwrap();
}

/// Failure injection that also works as root: the directory is replaced by a regular file, so
/// creating the next day's file fails (ENOTDIR) whatever the permissions.
#[tokio::test]
async fn unopenable_day_file_fails_the_append_then_recovers() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("audit");
    let aside = base.path().join("audit.aside");
    let metrics = Arc::new(Metrics::new(&["demo"]).unwrap());
    let options = AuditOptions {
        metrics: Some(metrics.clone()),
        ..options()
    };
    let log = AuditLog::open(&dir, options).unwrap();
    log.append(vec![record(at(1, 22), INSZ[0], 0)])
        .await
        .unwrap();

    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let error = log
        .append(vec![record(at(2, 1), INSZ[1], 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuditUnavailable);
    assert!(!error.to_string().contains(INSZ[1]), "{error}");
    assert_eq!(log.stats().failures, 1);
    assert!(metrics.render().contains("kbi_audit_failures_total 1"));

    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    let receipt = log
        .append(vec![record(at(2, 1), INSZ[1], 2)])
        .await
        .unwrap();
    // The failed record is not in the chain, and its number is not given again.
    assert_eq!(receipt.first_seq, 3);
    drop(log);
    let report = kbi_audit::verify(&files(&dir));
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, 2);
    assert_eq!(report.skipped, vec![(2, 2)]);
    assert!(metrics.render().contains("kbi_audit_records_total 2"));
}

/// The classic injection, a read-only directory, only fails for an unprivileged user.
#[tokio::test]
async fn read_only_directory_fails_the_append_unless_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root ignores directory permissions (see the RLIMIT_FSIZE test)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), options()).unwrap();
    log.append(vec![record(at(1, 22), INSZ[0], 0)])
        .await
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let failed = log.append(vec![record(at(2, 1), INSZ[1], 1)]).await;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(failed.is_err());
    log.append(vec![record(at(2, 1), INSZ[1], 2)])
        .await
        .unwrap();
    drop(log);
    assert!(kbi_audit::verify(&files(dir.path())).is_ok());
}

const FSIZE_CHILD: &str = "KBI_AUDIT_FSIZE_CHILD_DIR";

/// Failure injection for a write in the middle of a file, as root too: a file-size limit
/// (RLIMIT_FSIZE, SIGXFSZ ignored) makes `write` stop short and then fail with EFBIG, like a full
/// disk. The limit holds for a whole process, so the scenario runs in a child process (this test
/// binary again, running [`fsize_limit_scenario_in_child`] only).
#[test]
fn write_failure_midway_is_undone_and_later_appends_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            // the name libtest gives it in the one test binary (module path, no crate name)
            "audit_log::fsize_limit_scenario_in_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FSIZE_CHILD, dir.path())
        .output()
        .unwrap();
    // The child's own test summary stays out of this run's output unless it failed.
    assert!(
        status.status.success(),
        "child scenario failed: {}\n{}\n{}",
        status.status,
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let files = files(dir.path());
    let report = kbi_audit::verify(&files);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(
        report.records, 6,
        "3 before, 0 of the failed round, 3 after"
    );
}

/// Runs only as the child of the test above (does nothing otherwise).
#[test]
fn fsize_limit_scenario_in_child() {
    let Some(dir) = std::env::var_os(FSIZE_CHILD) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let metrics = Arc::new(Metrics::new(&["demo"]).unwrap());
    // Segments that grow with each write (the fallback when no spare fits on the disk): with
    // preallocated space the limit below would not be reached.
    let options = AuditOptions {
        metrics: Some(metrics.clone()),
        preallocate: false,
        ..options()
    };
    let log = AuditLog::open(&dir, options).unwrap();
    runtime.block_on(async {
        let batch = (0..3).map(|i| record(at(1, 9), INSZ[i], i)).collect();
        log.append(batch).await.unwrap();
    });
    let path = files(&dir).pop().unwrap();
    let good = std::fs::read(&path).unwrap();

    // Room for about half a record more.
    let limit = good.len() as u64 + 150;
    // SAFETY: plain libc calls on a process-wide setting; this process runs only this test.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut current = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut current), 0);
        let limited = libc::rlimit {
            rlim_cur: limit,
            rlim_max: current.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limited), 0);
    }
    let failed = runtime.block_on(async {
        let batch = (3..6).map(|i| record(at(1, 9), INSZ[i % 4], i)).collect();
        log.append(batch).await
    });
    let error = failed.unwrap_err();
    eprintln!("injected failure: {error}");
    assert!(matches!(error, AuditError::Io { .. }));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the partial write was cut back"
    );
    assert!(metrics.render().contains("kbi_audit_failures_total 1"));

    // SAFETY: as above; raising the soft limit back up to the hard limit is always allowed.
    unsafe {
        let mut current = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut current), 0);
        current.rlim_cur = current.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &current), 0);
    }
    let receipt = runtime.block_on(async {
        let batch = (6..9).map(|i| record(at(1, 9), INSZ[i % 4], i)).collect();
        log.append(batch).await.unwrap()
    });
    assert_eq!(
        receipt.first_seq, 7,
        "the failed round left no trace in the chain, and its numbers are not given again"
    );
    drop(log);
}
