//! Issue 24, item 8: the audit log is not world-readable whatever the umask. The directory is
//! 0700 and every file the log writes (segments, the spare, the checkpoints, the lock, a torn
//! tail set aside) 0600, set explicitly; an older log made under umask 022 is tightened on open.
//! The umask is per process, and this module shares its process with the other integration
//! tests: it sets 022, the usual default and the case the issue measured; no other test sets
//! one, and the log's modes must not depend on it anyway.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::audit::{at, files, open, INSZ};
use chrono::NaiveDate;
use kbi_audit::{AuditOptions, AuditOutcome, AuditRecord};
use kbi_core::domain::Insz;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn append_two(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let log = open(
        dir,
        AuditOptions {
            segment_bytes: 1 << 20,
            ..AuditOptions::default()
        },
    );
    runtime.block_on(async {
        for (n, insz) in INSZ.iter().enumerate().take(2) {
            let record = AuditRecord {
                time: at(1, 10),
                server_reference: format!("srv-{n}"),
                client_id: "demo".into(),
                protocol: Some("demo".into()),
                sender: None,
                question_referte: None,
                insz: Some(Insz::parse(insz).unwrap()),
                reference_date: NaiveDate::from_ymd_opt(2026, 1, 1),
                outcome: AuditOutcome::Ok,
                found: Some(true),
                purpose: Some("care-budget".into()),
                snapshot_id: Some("snap-1".into()),
                rule_set: Some("2026.1".into()),
                seq: 0,
                prev: String::new(),
            };
            log.append(vec![record]).await.unwrap();
        }
    });
}

/// Every file of `dir` but the public key (public by nature) is 0600.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".pub.pem") {
            continue;
        }
        assert_eq!(mode(&path), 0o600, "{name}: {:o}", mode(&path));
        seen += 1;
    }
    // Segment, spare, checkpoints, lock, private key at least.
    assert!(seen >= 4, "{seen} files");
}

#[test]
fn the_audit_directory_is_0700_and_its_files_0600_under_umask_022() {
    // SAFETY: umask(2) only sets the process's file mode mask.
    unsafe { libc::umask(0o022) };
    let base = tempfile::tempdir().unwrap();

    // Created by the log, directory and all.
    let dir = base.path().join("new/audit");
    append_two(&dir);
    assert_private(&dir);
    let segment = files(&dir).pop().unwrap();
    assert!(std::fs::read_to_string(&segment).unwrap().contains("srv-1"));

    // Made wide by an earlier version (or by hand): tightened on the next open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&segment, std::fs::Permissions::from_mode(0o644)).unwrap();
    append_two(&dir);
    assert_private(&dir);
}
