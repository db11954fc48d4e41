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
