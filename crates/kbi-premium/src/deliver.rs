//! What every delivery writes the same way, the yearly list and the protocol exports
//! (`kbi-export`) alike: hidden temporary files named after their process, so a later delivery
//! can prove them a killed one's leftovers; the output directory's check; the rename guard that
//! removes placed files unless the register committed them; the hashing writer.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::register;

pub use crate::register::sync_dir;

/// The output directory must exist and take a new file (probed with a temporary file, which
/// disappears at once).
pub fn check_out_dir(dir: &Path) -> Result<(), String> {
    let refuse = |why: String| why;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(refuse("is not a directory".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refuse("does not exist (create it first)".into()))
        }
        Err(e) => return Err(refuse(e.to_string())),
    }
    temp_in(dir, "probe")
        .map(drop)
        .map_err(|e| refuse(format!("is not writable: {e}")))
}

/// A hidden temporary file `.WHAT.pidPID@HOST.RANDOM.tmp`: the process id and host in the name
/// let a later export prove the file a killed export's leftover ([`remove_dead_temporaries`]).
pub fn temp_in(dir: &Path, what: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(
            ".{what}.pid{}@{}.",
            std::process::id(),
            register::host_name()
        ))
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Whether `name` is one of this program's temporary names and its process is gone: the name
/// is `.` + a delivery file's name (`….csv.age`, `….manifest.json`, `….manifest.json.sig`: the
/// yearly list's or an export's) or `probe` + `.pidPID@HOST.` + random + `.tmp`, HOST is this
/// host and PID no longer runs.
fn dead_temporary(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((what, rest)) = inner.split_once(".pid") else {
        return false;
    };
    let ours = what == "probe"
        || [".csv.age", ".manifest.json", ".manifest.json.sig"]
            .iter()
            .any(|kind| what.len() > kind.len() && what.ends_with(kind));
    let Some((pid, host_and_random)) = rest.split_once('@') else {
        return false;
    };
    let Some((host, _random)) = host_and_random.rsplit_once('.') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    ours && host == register::host_name()
        && pid != std::process::id()
        && !register::process_runs(pid)
}

/// Removes the temporary files of killed exports from `dir`; the paths removed.
pub fn remove_dead_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && dead_temporary(name) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed.sort();
    removed
}

/// The files an export has renamed into place so far. Until [`Placed::commit`] (the register
/// entry is written) they are not a delivery: dropping the guard, on an error or a panic at any
/// later step, removes them again, best effort (the error that caused it is the one reported).
pub struct Placed<'a> {
    dir: &'a Path,
    paths: Vec<PathBuf>,
    committed: bool,
}

impl<'a> Placed<'a> {
    pub fn new(dir: &'a Path) -> Self {
        Placed {
            dir,
            paths: Vec::with_capacity(3),
            committed: false,
        }
    }

    pub fn push(&mut self, path: PathBuf) {
        self.paths.push(path);
    }

    /// The export is recorded: the files stay.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
        let _ = register::sync_dir(self.dir);
    }
}

/// Renames a temporary file to its final name; unless `overwrite` (a forced delivery) never
/// over an existing file.
pub fn persist(temp: NamedTempFile, target: &Path, overwrite: bool) -> io::Result<()> {
    let outcome = if overwrite {
        temp.persist(target)
    } else {
        temp.persist_noclobber(target)
    };
    outcome.map(drop).map_err(|e| e.error)
}

/// Writes `bytes` to a new temporary file in `dir` (named after `name`), `fsync`ed.
pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<NamedTempFile> {
    let mut temp = temp_in(dir, name)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// The hex SHA-256 of everything `input` gives (a delivered file, a partner's file as given).
pub fn sha256_hex(input: impl io::Read) -> io::Result<String> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, input);
    let mut sink = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut sink)?;
    Ok(sink.finish().1)
}

/// Passes bytes through, hashing them (SHA-256) on the way.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The inner writer and the hex SHA-256 of what passed.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as a delivery's rename step would have put it in place.
    fn placed_file(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"placed").unwrap();
        path
    }

    #[test]
    fn files_placed_but_not_recorded_are_removed_even_when_a_later_step_panics() {
        let dir = tempfile::tempdir().unwrap();
        let list = placed_file(dir.path(), "kbi-reduced-premium-2027.csv.age");
        let manifest = placed_file(dir.path(), "kbi-reduced-premium-2027.manifest.json");
        let panicked = std::panic::catch_unwind(|| {
            let mut placed = Placed::new(dir.path());
            placed.push(list.clone());
            placed.push(manifest.clone());
            panic!("the register append panics");
        });
        assert!(panicked.is_err());
        assert!(!list.exists(), "list left behind");
        assert!(!manifest.exists(), "manifest left behind");
    }

    #[test]
    fn files_of_a_recorded_export_stay() {
        let dir = tempfile::tempdir().unwrap();
        let list = placed_file(dir.path(), "kbi-reduced-premium-2027.csv.age");
        let mut placed = Placed::new(dir.path());
        placed.push(list.clone());
        placed.commit();
        assert!(list.exists());
    }

    #[test]
    fn only_delivery_names_of_dead_processes_on_this_host_are_leftovers() {
        let host = register::host_name();
        let me = std::process::id();
        // A pid that is not running: the largest possible is never in use in a test.
        let dead = 4_194_303u32;
        assert!(dead_temporary(&format!(
            ".agii-gemeente-residents-2026-12.csv.age.pid{dead}@{host}.ab.tmp"
        )));
        assert!(dead_temporary(&format!(
            ".kbi-reduced-premium-2027.manifest.json.sig.pid{dead}@{host}.ab.tmp"
        )));
        assert!(!dead_temporary(&format!(".notes.pid{dead}@{host}.ab.tmp")));
        assert!(!dead_temporary(&format!(
            ".x.csv.age.pid{me}@{host}.ab.tmp"
        )));
        assert!(!dead_temporary(&format!(
            ".x.csv.age.pid{dead}@elsewhere.ab.tmp"
        )));
    }
}
