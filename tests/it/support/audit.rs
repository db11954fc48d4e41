//! What the audit-log test files share: test persons, times, and reading segments back.
#![allow(dead_code)] // Each test module uses a different part of this module.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::{DateTime, TimeZone, Utc};

/// Valid INSZ numbers for records (and for checking that no output quotes them).
pub const INSZ: [&str; 4] = ["85073003328", "00012556777", "17073003384", "98472899765"];

/// `hour`:00 UTC on `day` March 2026.
pub fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

/// The segment files of an audit directory, in order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    kbi_audit::files_in(dir, None, None).unwrap()
}

/// The record lines of a segment: up to its first NUL byte (preallocated space).
pub fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text[..text.find('\0').unwrap_or(text.len())]
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `kbi-advice` binary under test.
pub fn cli() -> Command {
    Command::cargo_bin("kbi-advice").unwrap()
}

/// Opens the log, waiting out a lock still held by a sibling test's child process: a `fork`
/// copies every open descriptor, the directory lock's too, until the child's `exec` closes it
/// (close-on-exec), so right after a log is dropped another test's spawn may hold it a moment.
pub fn open(dir: &Path, options: kbi_audit::AuditOptions) -> kbi_audit::AuditLog {
    for _ in 0..100 {
        match kbi_audit::AuditLog::open(dir, options.clone()) {
            Err(kbi_audit::AuditError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the audit directory stayed locked for 5 s");
}
