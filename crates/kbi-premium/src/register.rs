//! The export register: an append-only JSON Lines file, one line per export, that enforces the
//! protocol's "at most once a year" and records who exported what, when, and why again.
//!
//! Appends open the file with `O_APPEND`, write the whole line in one call and `fsync` before the
//! export is reported done. A lock file beside the register keeps two exports from passing the
//! once-a-year check at the same time.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{ListBasis, ListHashes};

/// One export, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    /// When the export was made (the manifest's `generated_at`), RFC 3339 UTC.
    pub time: String,
    /// As in the manifest.
    #[serde(flatten)]
    pub basis: ListBasis,
    #[serde(flatten)]
    pub hashes: ListHashes,
    /// SHA-256 of the exact manifest bytes (which the signature covers).
    pub manifest_sha256: String,
    /// Under a protocol: its id, the delivery (`reduced-premium`) and the period key (the year
    /// of the reference date), as a protocol export's line names them, so either kind of line
    /// counts for the once-a-year rule of the other. Absent without a protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Where the files were written.
    pub out_dir: String,
    pub operator: String,
    /// A repeated export for the same premium year, allowed by `--force`.
    pub forced: bool,
    /// Why it was repeated (only with `forced`).
    pub reason: Option<String>,
    pub program_version: String,
}

/// Why the register could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read the export register {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the export register {path} line {line} is not a register entry ({why}); the register is \
         append-only and is never repaired by this program"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("cannot append to the export register {path}: {error}")]
    Append {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "another export holds the lock {path} ({holder}); if no export is running, a previous \
         one was killed: check the register and the output directory, then remove the lock file"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("cannot create the lock file {path}: {error}")]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The register file.
#[derive(Debug, Clone)]
pub struct Register {
    path: PathBuf,
}

/// The part of an entry the once-a-period checks need; older or newer entries may carry more.
/// The yearly list's lines carry `premium_year`; a protocol export's (`kbi-export`) carry
/// `protocol`, `file` and `period` instead: one register, both kinds of line.
#[derive(Deserialize)]
struct Seen {
    #[serde(default)]
    premium_year: Option<i32>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    period: Option<String>,
    time: String,
    operator: String,
}

/// An earlier export of the same premium year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    pub time: String,
    pub operator: String,
}

impl Register {
    pub fn new(path: impl Into<PathBuf>) -> Register {
        Register { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Earlier exports of `premium_year`, oldest first. A missing register has none; a line that
    /// is not an entry is an error (the check must not pass on a damaged register).
    /// With `under` = (protocol, file), a protocol export's delivery of that file for the
    /// period of the list (the year of 1 January of P − 1) counts too.
    pub(crate) fn exports_of(
        &self,
        premium_year: i32,
        under: Option<(&str, &str)>,
    ) -> Result<Vec<Earlier>, RegisterError> {
        let period = crate::UnderProtocol::period(premium_year);
        self.earlier(|seen| {
            seen.premium_year == Some(premium_year)
                || under.is_some_and(|(protocol, file)| {
                    seen.protocol.as_deref() == Some(protocol)
                        && seen.file.as_deref() == Some(file)
                        && seen.period.as_deref() == Some(period.as_str())
                })
        })
    }

    /// Earlier deliveries of `file` of `protocol` in the period `period` (`2026`, `2026-H2`,
    /// `2026-12`), oldest first: the lines a protocol export wrote.
    pub fn deliveries_of(
        &self,
        protocol: &str,
        file: &str,
        period: &str,
    ) -> Result<Vec<Earlier>, RegisterError> {
        self.earlier(|seen| {
            seen.protocol.as_deref() == Some(protocol)
                && seen.file.as_deref() == Some(file)
                && seen.period.as_deref() == Some(period)
        })
    }

    fn earlier(&self, pick: impl Fn(&Seen) -> bool) -> Result<Vec<Earlier>, RegisterError> {
        let read = |error| RegisterError::Read {
            path: self.path.clone(),
            error,
        };
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(read(error)),
        };
        let mut out = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(read)?;
            if line.trim().is_empty() {
                continue;
            }
            let seen: Seen = serde_json::from_str(&line).map_err(|e| RegisterError::Corrupt {
                path: self.path.clone(),
                line: n + 1,
                why: kbi_core::redact::json::<Seen>(line.as_bytes(), &e),
            })?;
            if pick(&seen) {
                out.push(Earlier {
                    time: seen.time,
                    operator: seen.operator,
                });
            }
        }
        Ok(out)
    }

    /// Appends one entry: one `write` of the whole line on an `O_APPEND` descriptor, then `fsync`
    /// (and of the directory when the register was just created).
    pub fn append(&self, entry: &RegisterEntry) -> Result<(), RegisterError> {
        self.append_line(entry)
    }

    /// Appends any entry serialised as one JSON line (a protocol export's), as [`Self::append`].
    pub fn append_line<T: Serialize>(&self, entry: &T) -> Result<(), RegisterError> {
        let fail = |error| RegisterError::Append {
            path: self.path.clone(),
            error,
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| fail(std::io::Error::other(e)))?;
        line.push(b'\n');
        let existed = self.path.exists();
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(fail)?;
        file.write_all(&line).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        if !existed {
            sync_dir(parent_of(&self.path)).map_err(fail)?;
        }
        Ok(())
    }

    /// Takes the export lock (`REGISTER.lock`, created exclusively); released when dropped.
    ///
    /// A lock left by a killed export is taken over when it provably is one: it names this
    /// host and a process id that no longer runs. Anything else (another host, a live process,
    /// an unreadable lock) is refused as before, for the operator to judge.
    pub fn lock(&self) -> Result<RegisterLock, RegisterError> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut reclaimed = None;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let holder = format!(
                        "pid {} on {} since {}\n",
                        std::process::id(),
                        host_name(),
                        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                    );
                    // The content lets the next export prove the lock stale if this one is killed.
                    let _ = file.write_all(holder.as_bytes());
                    let _ = file.sync_all();
                    return Ok(RegisterLock { path, reclaimed });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default();
                    if reclaimed.is_none() && stale(&holder) && take_over(&path, &holder) {
                        reclaimed = Some(holder);
                        continue;
                    }
                    return Err(RegisterError::Locked { path, holder });
                }
                Err(error) => return Err(RegisterError::Lock { path, error }),
            }
        }
    }
}

/// The held export lock; removing the file on drop releases it.
#[derive(Debug)]
pub struct RegisterLock {
    path: PathBuf,
    /// The content of a stale lock (a killed export's) this one replaced.
    reclaimed: Option<String>,
}

impl RegisterLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the stale lock taken over said (`pid N on HOST since T`), if there was one.
    pub fn reclaimed(&self) -> Option<&str> {
        self.reclaimed.as_deref()
    }
}

/// This machine's name, as written in locks (a process id only means something on its host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether process `pid` runs on this machine (signal 0 probes without sending anything; a
/// process of another user answers EPERM, which also means it runs).
pub fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether a lock's content (`pid N on HOST since T`) proves it stale: this host, a process
/// that no longer runs. The older form without a host is not proof.
fn stale(holder: &str) -> bool {
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some(host)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == host_name() && pid != std::process::id() && !process_runs(pid)
}

/// Moves the stale lock aside and removes it, unless it changed since it was judged (another
/// export took it over first): then it is put back and not taken.
fn take_over(path: &Path, judged: &str) -> bool {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".stale.{}", std::process::id()));
    let aside = PathBuf::from(aside);
    if std::fs::rename(path, &aside).is_err() {
        return false;
    }
    let moved = std::fs::read_to_string(&aside)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if moved != judged {
        let _ = std::fs::rename(&aside, path);
        return false;
    }
    std::fs::remove_file(&aside).is_ok()
}

impl Drop for RegisterLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(year: i32, operator: &str) -> RegisterEntry {
        RegisterEntry {
            time: "2026-01-15T09:00:00Z".into(),
            basis: ListBasis {
                premium_year: year,
                reference_date: format!("{}-01-01", year - 1),
                snapshot_id: "s".into(),
                extracted_at: "2026-01-14T02:00:00Z".into(),
                rule_set: "r".into(),
                count: 3,
            },
            hashes: ListHashes {
                plaintext_sha256: "p".into(),
                ciphertext_sha256: "c".into(),
            },
            manifest_sha256: "m".into(),
            protocol: None,
            file: None,
            period: None,
            out_dir: "/out".into(),
            operator: operator.into(),
            forced: false,
            reason: None,
            program_version: "0".into(),
        }
    }

    /// A register line's exact bytes: the register is append-only and read back by every later
    /// export, so its format must not move.
    #[test]
    fn a_register_entry_is_written_as_the_pinned_line_and_read_back() {
        let line = serde_json::to_string(&entry(2027, "op")).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-01-15T09:00:00Z","premium_year":2027,"reference_date":"2026-01-01","snapshot_id":"s","extracted_at":"2026-01-14T02:00:00Z","rule_set":"r","count":3,"plaintext_sha256":"p","ciphertext_sha256":"c","manifest_sha256":"m","out_dir":"/out","operator":"op","forced":false,"reason":null,"program_version":"0"}"#
        );
        let back: RegisterEntry = serde_json::from_str(&line).unwrap();
        assert_eq!(back, entry(2027, "op"));
    }

    #[test]
    fn appends_accumulate_and_are_found_by_year() {
        let dir = tempfile::tempdir().unwrap();
        let register = Register::new(dir.path().join("register.jsonl"));
        assert!(register.exports_of(2027, None).unwrap().is_empty());
        register.append(&entry(2027, "alice")).unwrap();
        register.append(&entry(2028, "bob")).unwrap();
        let earlier = register.exports_of(2027, None).unwrap();
        assert_eq!(earlier.len(), 1);
        assert_eq!(earlier[0].operator, "alice");
        let text = std::fs::read_to_string(register.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn a_protocol_exports_line_counts_for_the_list_of_its_period_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let register = Register::new(dir.path().join("register.jsonl"));
        // A line as `export --file reduced-premium --reference-date 2026-01-01` writes it.
        let line = serde_json::json!({"time": "t", "protocol": "agii-vsb", "file": "reduced-premium",
            "period": "2026", "operator": "bob"});
        register.append_line(&line).unwrap();
        assert!(register.exports_of(2027, None).unwrap().is_empty());
        assert_eq!(
            register
                .exports_of(2027, Some(("agii-vsb", "reduced-premium")))
                .unwrap()
                .len(),
            1
        );
        assert!(register
            .exports_of(2028, Some(("agii-vsb", "reduced-premium")))
            .unwrap()
            .is_empty());
        // And the list's own line, under a protocol, is found by the export's check.
        let mut listed = entry(2028, "alice");
        listed.protocol = Some("agii-vsb".into());
        listed.file = Some("reduced-premium".into());
        listed.period = Some("2027".into());
        register.append(&listed).unwrap();
        assert_eq!(
            register
                .deliveries_of("agii-vsb", "reduced-premium", "2027")
                .unwrap()[0]
                .operator,
            "alice"
        );
    }

    #[test]
    fn a_damaged_register_stops_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let register = Register::new(dir.path().join("register.jsonl"));
        register.append(&entry(2027, "alice")).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(register.path())
            .unwrap();
        file.write_all(b"{\"premium_ye\n").unwrap();
        let error = register.exports_of(2028, None).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let register = Register::new(dir.path().join("register.jsonl"));
        let lock = register.lock().unwrap();
        let error = register.lock().unwrap_err();
        assert!(matches!(error, RegisterError::Locked { .. }), "{error}");
        drop(lock);
        drop(register.lock().unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
