//! The import's report: counts, WARNs per row and message, ERRORs with where they are, never a
//! value of a person (`kbi-import.md` §5); and the masking of file names.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// Errors listed in full; beyond this they are counted (the report must stay bounded too).
pub(crate) const MAX_LISTED_ERRORS: usize = 1000;
/// Distinct WARN messages kept per row.
pub(crate) const MAX_MESSAGES_PER_ROW: usize = 50;
/// The key under which WARN messages beyond [`MAX_MESSAGES_PER_ROW`] are counted.
pub(crate) const OTHER_MESSAGES: &str = "(other messages)";

/// One ERROR: where (file, reply, element path) and what, never a value of the person.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorEntry {
    /// The file as given, with any 11-digit run masked (files are sometimes named after an INSZ).
    pub file: String,
    /// 1-based number of the file in the run.
    pub file_number: u64,
    /// 1-based number of the reply in the file (`None` for file-level and CSV errors).
    pub reply: Option<u64>,
    /// The mapping row (`M1`…`M23`), `XML` or `CSV`.
    pub row: String,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ErrorEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} file {} ({})",
            self.row, self.file_number, self.file
        )?;
        if let Some(reply) = self.reply {
            write!(f, " reply {reply}")?;
        }
        write!(f, " {}: {}", self.path, self.message)
    }
}

/// WARNs of one row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowWarnings {
    pub total: u64,
    pub messages: BTreeMap<String, u64>,
}

/// The employment-service list's part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmploymentReport {
    pub lines: u64,
    pub persons_with_dossier: u64,
    pub lines_without_dossier: u64,
}

/// The import summary (stderr, and `--report` as JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub from: &'static str,
    pub codes_version: String,
    pub snapshot_id: String,
    pub out: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub replies: u64,
    pub dossiers: u64,
    /// Replies (or answers) with Uitzondering FOUT 30001: not in the register, no person line.
    pub not_found: u64,
    pub persons: u64,
    pub events: BTreeMap<&'static str, u64>,
    pub warnings: BTreeMap<&'static str, RowWarnings>,
    pub ignored: BTreeMap<&'static str, u64>,
    pub unknown_elements: BTreeMap<String, u64>,
    /// Entries of input directories that are not read: symbolic links and special files (FIFOs,
    /// sockets, devices), each also a WARN of row `INPUT`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<&'static str, u64>,
    pub employment_service: Option<EmploymentReport>,
    pub facts: Vec<&'static str>,
    pub errors_total: u64,
    pub errors: Vec<ErrorEntry>,
    pub seconds: f64,
}

impl Report {
    /// Counts `n` WARNs with this message; true when the message got its own entry just now.
    pub(crate) fn warn_n(&mut self, row: &'static str, message: &str, n: u64) -> bool {
        let entry = self.warnings.entry(row).or_default();
        entry.total += n;
        if let Some(count) = entry.messages.get_mut(message) {
            *count += n;
            false
        } else if entry.messages.len() < MAX_MESSAGES_PER_ROW {
            entry.messages.insert(message.to_string(), n);
            true
        } else {
            *entry.messages.entry(OTHER_MESSAGES.into()).or_insert(0) += n;
            false
        }
    }

    pub(crate) fn error(&mut self, entry: ErrorEntry) {
        self.errors_total += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(entry);
        }
    }

    /// The human summary (stderr).
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for e in &self.errors {
            let _ = writeln!(s, "{e}");
        }
        if self.errors_total > self.errors.len() as u64 {
            let _ = writeln!(
                s,
                "… and {} more ERRORs (only the first {MAX_LISTED_ERRORS} are listed)",
                self.errors_total - self.errors.len() as u64
            );
        }
        let _ = writeln!(
            s,
            "{}: {} files ({} bytes), {} replies, {} dossiers, {} not in the register (30001), {} persons, {} ERRORs, in {:.2}s",
            if self.ok { "imported" } else { "REFUSED, nothing written" },
            self.files,
            self.bytes,
            self.replies,
            self.dossiers,
            self.not_found,
            self.persons,
            self.errors_total,
            self.seconds
        );
        if let Some(out) = &self.out {
            let _ = writeln!(s, "snapshot: {out} (id {})", self.snapshot_id);
        }
        let _ = writeln!(s, "facts: {}", self.facts.join(", "));
        if !self.events.is_empty() {
            let list: Vec<String> = self
                .events
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "events: {}", list.join(", "));
        }
        for (row, w) in &self.warnings {
            let _ = writeln!(s, "WARN {row}: {}", w.total);
            for (message, n) in &w.messages {
                let _ = writeln!(s, "  {n} × {message}");
            }
        }
        if !self.ignored.is_empty() {
            let _ = writeln!(s, "ignored by design (M20):");
            for (group, n) in &self.ignored {
                let _ = writeln!(s, "  {n} × {group}");
            }
        }
        if !self.unknown_elements.is_empty() {
            let _ = writeln!(s, "elements not in the 01.00 schema (skipped):");
            for (name, n) in &self.unknown_elements {
                let _ = writeln!(s, "  {n} × {name}");
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "skipped in the input directories (not read):");
            for (kind, n) in &self.skipped {
                let _ = writeln!(s, "  {n} × {kind}");
            }
        }
        if let Some(es) = &self.employment_service {
            let _ = writeln!(
                s,
                "employment service: {} lines, {} persons with a dossier, {} lines without a dossier (dropped)",
                es.lines, es.persons_with_dossier, es.lines_without_dossier
            );
        }
        s
    }
}

/// A path as shown in ERRORs and the report: every run of digits holding 11 or more digits, with
/// the separators [`Insz::parse`](kbi_core::domain::Insz::parse) accepts between them (space, `.`,
/// `-`), has its digits masked: files are sometimes named after the INSZ asked
/// (`90 01 15 101 85.xml`).
pub fn display_path(path: &Path) -> String {
    mask_insz_runs(&path.display().to_string())
}

/// [`display_path`] of a text.
pub fn mask_insz_runs(text: &str) -> String {
    let bytes = text.as_bytes();
    let separator = |b: u8| matches!(b, b' ' | b'.' | b'-');
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            // The run: digits and separators, ending on its last digit.
            let mut j = i;
            let mut end = i;
            let mut digits = 0;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || separator(bytes[j])) {
                if bytes[j].is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                }
                j += 1;
            }
            for &b in &bytes[i..end] {
                out.push(if digits >= 11 && b.is_ascii_digit() {
                    b'#'
                } else {
                    b
                });
            }
            i = end;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Only ASCII digits were replaced by an ASCII byte: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::mask_insz_runs;

    #[test]
    fn every_insz_shaped_run_is_masked_with_its_separators() {
        assert_eq!(mask_insz_runs("90011510185.xml"), "###########.xml");
        assert_eq!(
            mask_insz_runs("dir/90 01 15 101 85.xml"),
            "dir/## ## ## ### ##.xml"
        );
        assert_eq!(
            mask_insz_runs("90.01.15-101.85.xml.gz"),
            "##.##.##-###.##.xml.gz"
        );
        assert_eq!(mask_insz_runs("a 9001151018 b.xml"), "a 9001151018 b.xml");
        assert_eq!(mask_insz_runs("batch-000001.xml"), "batch-000001.xml");
        assert_eq!(mask_insz_runs("2024-11-30 12.xml"), "2024-11-30 12.xml");
    }
}
