//! `snapshot import --from kbi-dossier-01.00`: GeefDossierKBI 01.00 replies → one snapshot
//! (`../shared/spec/kbi-import.md`).
//!
//! - [`dossier`]: the parsed dossier (what the mapping looks at);
//! - [`xml`]: the streaming, hostile-input-proof reader of replies;
//! - [`mapping`]: dossier → events, WARNs and ERRORs, row by row (pure);
//! - [`codes`]: the reviewed code lists (`config/kbi-codes.toml`);
//! - [`generate`]: the inverse, synthetic persons written as dossier replies.
//!
//! All or nothing: the person lines go to an anonymous temporary file in the output's directory;
//! only when every file was read without an ERROR is the snapshot (header with the final person
//! count, then the lines) written to a second temporary file there and renamed into place.
//! Memory stays flat in the number of dossiers apart from the set of INSZ seen (8 bytes each)
//! and the employment-service list when one is given.

pub mod codes;
pub mod dossier;
pub mod generate;
pub mod mapping;
pub mod xml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use codes::Codes;
use dossier::{Reply, Uitzondering};
use kbi_core::domain::day::parse_date;
use kbi_core::domain::event::{Event, EventKind};
use kbi_core::domain::Insz;
use kbi_core::io::Progress;
use kbi_core::snapshot::reader::{decompress, Compression};
use mapping::{map_dossier, show_code, Severity};

/// The `--from` value.
pub const FORMAT_NAME: &str = "kbi-dossier-01.00";

/// The event types this mapping can produce (M23).
pub(crate) const DOSSIER_FACTS: [&str; 9] = [
    "OBLIGATION_START",
    "OBLIGATION_END",
    "EXEMPTION",
    "REGISTRATION",
    "CONTRACT_SIGNED",
    "DEADLINE_EXTENSION",
    "INFRINGEMENT",
    "INFRINGEMENT_CLOSED",
    "CERTIFICATE",
];

/// Errors listed in full; beyond this they are counted (the report must stay bounded too).
pub(crate) const MAX_LISTED_ERRORS: usize = 1000;
/// Distinct WARN messages kept per row.
const MAX_MESSAGES_PER_ROW: usize = 50;
/// The key under which WARN messages beyond [`MAX_MESSAGES_PER_ROW`] are counted.
const OTHER_MESSAGES: &str = "(other messages)";
/// Most input files read at once (one worker thread each).
const MAX_WORKERS: usize = 4;
/// How many files a worker may finish ahead of the oldest file not yet merged (bounds the
/// temporary chunk files and per-file reports held at once).
const FILES_AHEAD: usize = 4;
/// Longest line of the employment-service CSV.
const MAX_CSV_LINE: u64 = 1024;

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub snapshot_id: String,
    pub extracted_at: DateTime<Utc>,
    pub employment_service: Option<PathBuf>,
    pub codes: Codes,
}

/// Why the import could not even start (bad arguments); ERRORs in the data are in the report.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("--snapshot-id must be 1 to 128 characters without control characters")]
    SnapshotId,
    #[error("no input files: {0}")]
    NoInput(String),
    #[error("cannot read input {path}: {error}")]
    Input { path: String, error: io::Error },
    #[error("cannot write {path}: {error}")]
    Output { path: String, error: io::Error },
}

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
    pub employment_service: Option<EmploymentReport>,
    pub facts: Vec<&'static str>,
    pub errors_total: u64,
    pub errors: Vec<ErrorEntry>,
    pub seconds: f64,
}

impl Report {
    /// Counts `n` WARNs with this message; true when the message got its own entry just now.
    fn warn_n(&mut self, row: &'static str, message: &str, n: u64) -> bool {
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

    fn error(&mut self, entry: ErrorEntry) {
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

/// Masks every run of digits (with `.`/`-` between them) holding 11 or more digits: files are
/// sometimes named after the INSZ asked.
pub(crate) fn display_path(path: &Path) -> String {
    let text = path.display().to_string();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            let mut digits = 0;
            while j < chars.len()
                && (chars[j].is_ascii_digit() || chars[j] == '.' || chars[j] == '-')
            {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                }
                j += 1;
            }
            for &c in &chars[i..j] {
                out.push(if digits >= 11 && c.is_ascii_digit() {
                    '#'
                } else {
                    c
                });
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Lists the input files: files as given, directories recursively (`*.xml`, `*.xml.gz`,
/// `*.xml.zst`), in name order. Only regular files are read.
pub(crate) fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
        let err = |error| ImportError::Input {
            path: display_path(dir),
            error,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(|error| ImportError::Input {
                path: display_path(&path),
                error,
            })?;
            if meta.is_dir() {
                walk(&path, out)?;
            } else if meta.is_file() {
                let name = path.to_string_lossy();
                if name.ends_with(".xml") || name.ends_with(".xml.gz") || name.ends_with(".xml.zst")
                {
                    out.push(path);
                }
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|error| ImportError::Input {
            path: display_path(input),
            error,
        })?;
        if meta.is_dir() {
            walk(input, &mut files)?;
        } else if meta.is_file() {
            files.push(input.clone());
        } else {
            return Err(ImportError::Input {
                path: display_path(input),
                error: io::Error::other("not a regular file"),
            });
        }
    }
    if files.is_empty() {
        return Err(ImportError::NoInput(
            "no *.xml, *.xml.gz or *.xml.zst file in the inputs".into(),
        ));
    }
    Ok(files)
}

/// Counts the bytes read from a file on disk (for the progress bar).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_input(path: &Path, count: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let file = kbi_core::io::open_regular(path)?;
    let mut reader = BufReader::with_capacity(1 << 18, Counting { inner: file, count });
    let head = reader.fill_buf()?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    decompress(reader, compression)
}

/// The employment services' registrations, by INSZ value.
fn read_employment_service(
    path: &Path,
    report: &mut Report,
    file_number: u64,
) -> Result<HashMap<u64, Vec<NaiveDate>>, ImportError> {
    let file = kbi_core::io::open_regular(path).map_err(|error| ImportError::Input {
        path: display_path(path),
        error: error.into(),
    })?;
    let mut reader = BufReader::new(file);
    let mut map: HashMap<u64, Vec<NaiveDate>> = HashMap::new();
    let shown = display_path(path);
    let error = |report: &mut Report, line: u64, message: String| {
        report.error(ErrorEntry {
            file: shown.clone(),
            file_number,
            reply: None,
            row: "CSV".into(),
            path: format!("line {line}"),
            message,
        })
    };
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut lines = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_CSV_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|error| ImportError::Input {
                path: display_path(path),
                error,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        if n as u64 > MAX_CSV_LINE {
            error(
                report,
                number,
                format!("line longer than {MAX_CSV_LINE} bytes"),
            );
            break;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(_) => {
                error(report, number, "not UTF-8".into());
                continue;
            }
        };
        if number == 1 {
            if text.trim_start_matches('\u{feff}') != "insz,date" {
                error(report, 1, "the header must be exactly `insz,date`".into());
                break;
            }
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let Some((insz, date)) = text.split_once(',') else {
            error(report, number, "expected two fields `insz,date`".into());
            continue;
        };
        let insz = match (insz.len() == 11 && insz.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Insz::parse(insz))
        {
            Some(Ok(i)) => i,
            _ => {
                error(report, number, "invalid INSZ".into());
                continue;
            }
        };
        let Ok(date) = parse_date(date) else {
            error(report, number, "invalid date (YYYY-MM-DD)".into());
            continue;
        };
        lines += 1;
        map.entry(insz.value()).or_default().push(date);
    }
    report.employment_service = Some(EmploymentReport {
        lines,
        ..EmploymentReport::default()
    });
    Ok(map)
}

/// Writes `YYYY-MM-DD`.
fn push_date(out: &mut Vec<u8>, date: NaiveDate) {
    let y = date.year().clamp(0, 9999) as u32;
    let (m, d) = (date.month(), date.day());
    out.extend_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]);
}

/// Appends one person line of `snapshot-format.md`.
pub(crate) fn write_person_line(out: &mut Vec<u8>, insz: Insz, events: &[Event]) {
    out.extend_from_slice(b"{\"insz\": \"");
    out.extend_from_slice(insz.to_string().as_bytes());
    out.extend_from_slice(b"\", \"events\": [");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"date\": \"");
        push_date(out, e.date);
        out.extend_from_slice(b"\", \"type\": \"");
        out.extend_from_slice(e.kind.type_name().as_bytes());
        out.push(b'"');
        match e.kind {
            EventKind::ObligationStart { region } => {
                out.extend_from_slice(b", \"region\": \"");
                out.extend_from_slice(region.code().as_bytes());
                out.push(b'"');
            }
            EventKind::ObligationEnd { cause: Some(c) } => {
                out.extend_from_slice(b", \"cause\": \"");
                out.extend_from_slice(end_cause(c).as_bytes());
                out.push(b'"');
            }
            EventKind::Exemption { cause: Some(c) } => {
                out.extend_from_slice(b", \"cause\": \"");
                out.extend_from_slice(mapping::exemption_cause_code(c).as_bytes());
                out.push(b'"');
            }
            EventKind::DeadlineExtension { obligation, until } => {
                out.extend_from_slice(b", \"obligation\": \"");
                out.extend_from_slice(obligation.code().as_bytes());
                out.extend_from_slice(b"\", \"until\": \"");
                push_date(out, until);
                out.push(b'"');
            }
            EventKind::Infringement { obligation }
            | EventKind::InfringementClosed { obligation } => {
                out.extend_from_slice(b", \"obligation\": \"");
                out.extend_from_slice(obligation.code().as_bytes());
                out.push(b'"');
            }
            _ => {}
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
}

fn end_cause(c: kbi_core::domain::event::EndCause) -> &'static str {
    use kbi_core::domain::event::EndCause::*;
    match c {
        Moved => "MOVED",
        Naturalised => "NATURALISED",
        Deceased => "DECEASED",
        Other => "OTHER",
    }
}

/// The header line (M23: `facts`, `sources`).
pub(crate) fn header_line(
    snapshot_id: &str,
    extracted_at: DateTime<Utc>,
    persons: u64,
    facts: &[&str],
    sources: serde_json::Value,
) -> String {
    let header = serde_json::json!({"kbi_snapshot": {
        "format": 1,
        "snapshot_id": snapshot_id,
        "extracted_at": extracted_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "persons": persons,
        "facts": facts,
        "sources": sources,
    }});
    format!("{header}\n")
}

/// Writes header and body to `file`, compressed as the output's name says; every error of the
/// encoder's end is seen (no silent finish on drop).
fn write_snapshot(out: &Path, file: &File, header: &[u8], body: &mut File) -> io::Result<()> {
    let name = out.to_string_lossy();
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let mut body = BufReader::with_capacity(1 << 20, body);
    if name.ends_with(".gz") {
        let mut w = flate2::write::GzEncoder::new(buffered, flate2::Compression::fast());
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.finish()?.flush()
    } else if name.ends_with(".zst") {
        let mut w = zstd::stream::write::Encoder::new(buffered, 3)?;
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.finish()?.flush()
    } else {
        let mut w = buffered;
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.flush()
    }
}

/// The INSZ seen so far: the run's own set, or the set shared by the worker threads (there a
/// duplicate is only detected; the sequential rerun names it).
enum Seen<'a> {
    Own(HashSet<u64>),
    Shared(&'a Mutex<HashSet<u64>>),
}

impl Seen<'_> {
    fn insert(&mut self, value: u64) -> bool {
        match self {
            Seen::Own(set) => set.insert(value),
            Seen::Shared(set) => set.lock().unwrap_or_else(|e| e.into_inner()).insert(value),
        }
    }
}

/// The employment-service registrations: owned and emptied as persons take them (what remains
/// is "without a dossier"), or shared read-only by the workers, which count what they used
/// (the same thing when every INSZ is unique, which a successful run guarantees).
enum Employment<'a> {
    Own(HashMap<u64, Vec<NaiveDate>>),
    Shared {
        map: &'a HashMap<u64, Vec<NaiveDate>>,
        used: u64,
    },
}

impl Employment<'_> {
    fn take(&mut self, insz: u64) -> Option<Vec<NaiveDate>> {
        match self {
            Employment::Own(map) => map.remove(&insz),
            Employment::Shared { map, used } => {
                let dates = map.get(&insz)?.clone();
                *used += dates.len() as u64;
                Some(dates)
            }
        }
    }
}

/// State of one run (the whole import, or one file of a parallel import).
struct Run<'a> {
    options: &'a ImportOptions,
    report: Report,
    seen: Seen<'a>,
    employment: Employment<'a>,
    body: BufWriter<File>,
    line: Vec<u8>,
    /// WARN messages in the order they first got their own entry: replayed in file order, they
    /// give the merged report the same entries (and the same "(other messages)") as one run.
    warn_order: Vec<(&'static str, String)>,
}

impl Run<'_> {
    fn warn(&mut self, row: &'static str, message: &str) {
        if self.report.warn_n(row, message, 1) {
            self.warn_order.push((row, message.to_string()));
        }
    }

    fn reply(&mut self, reply: Reply, file: &str, file_number: u64, reply_number: u64) {
        self.report.replies += 1;
        let err = |row: &str, path: &str, message: String| ErrorEntry {
            file: file.to_string(),
            file_number,
            reply: Some(reply_number),
            row: row.into(),
            path: path.into(),
            message,
        };
        // Section 2: only GeefDossierKBI 01.00.
        let naam_ok = matches!(&reply.naam, Some(Some(n)) if n == "GeefDossierKBI");
        let versie_ok = matches!(&reply.versie, Some(Some(v)) if v.starts_with("01.00"));
        if !reply.namespace_ok || !naam_ok || !versie_ok {
            let message = if !naam_ok {
                format!(
                    "a reply of another service (Context/Naam {}), not GeefDossierKBI",
                    show_code(&reply.naam.clone().flatten())
                )
            } else if !versie_ok {
                format!(
                    "a reply of version {}, not 01.00: another version needs its own mapping",
                    show_code(&reply.versie.clone().flatten())
                )
            } else {
                "the reply element is not in the GeefDossierKBI 01.00 namespace".to_string()
            };
            self.report.error(err("§2", "Repliek/Context", message));
            return;
        }
        // M22: reply-level exceptions.
        let reply_state = self.exceptions(&reply.uitzonderingen, "Repliek/Uitzonderingen", &err);
        if reply.antwoorden.is_empty() {
            match reply_state {
                Exceptions::NotFound => self.report.not_found += 1,
                Exceptions::Failed => {}
                Exceptions::None => self.report.error(err(
                    "M22",
                    "Repliek",
                    "a reply with neither a dossier nor an Uitzondering: the dossier is unknown"
                        .into(),
                )),
            }
            return;
        }
        for (i, antwoord) in reply.antwoorden.iter().enumerate() {
            let base = format!("Repliek/Antwoorden/Antwoord[{}]", i + 1);
            let state = self.exceptions(
                &antwoord.uitzonderingen,
                &format!("{base}/Uitzonderingen"),
                &err,
            );
            let not_found = matches!(reply_state, Exceptions::NotFound)
                || matches!(state, Exceptions::NotFound);
            let failed =
                matches!(reply_state, Exceptions::Failed) || matches!(state, Exceptions::Failed);
            match (&antwoord.dossier, not_found) {
                (Some(_), true) => {
                    self.report.error(err(
                        "M22",
                        &base,
                        "Uitzondering 30001 (no data found) together with a dossier".into(),
                    ));
                    continue;
                }
                (None, true) => {
                    self.report.not_found += 1;
                    continue;
                }
                (None, false) => {
                    if !failed {
                        self.report.error(err(
                            "M22",
                            &base,
                            "an Antwoord with neither a dossier nor an Uitzondering: the dossier is unknown".into(),
                        ));
                    }
                    continue;
                }
                (Some(_), false) if failed => continue,
                (Some(dossier), false) => {
                    self.report.dossiers += 1;
                    let mapped = map_dossier(dossier, &self.options.codes);
                    let mut ok = true;
                    for f in &mapped.findings {
                        match f.severity {
                            Severity::Error => {
                                ok = false;
                                self.report.error(err(
                                    f.row,
                                    &format!("KBIDossier/{}", f.path),
                                    f.message.clone(),
                                ));
                            }
                            Severity::Warn => self.warn(f.row, &f.message),
                        }
                    }
                    let Some(insz) = mapped.insz else { continue };
                    if !self.seen.insert(insz.value()) {
                        self.report.error(err(
                            "M23",
                            "KBIDossier/Personalia/INSZ",
                            "a second dossier for the same INSZ (replies must be deduplicated before the import)".into(),
                        ));
                        continue;
                    }
                    if !ok || self.report.errors_total > 0 {
                        // Nothing will be written: spare the work, keep reading for errors.
                        continue;
                    }
                    let mut events = mapped.events;
                    if let Some(dates) = self.employment.take(insz.value()) {
                        if let Some(es) = self.report.employment_service.as_mut() {
                            es.persons_with_dossier += 1;
                        }
                        for date in dates {
                            events.push(Event {
                                date,
                                kind: EventKind::EmploymentServiceRegistration,
                            });
                        }
                        events.sort_by_key(|e| e.date);
                    }
                    for e in &events {
                        *self.report.events.entry(e.kind.type_name()).or_insert(0) += 1;
                    }
                    self.line.clear();
                    write_person_line(&mut self.line, insz, &events);
                    if let Err(e) = self.body.write_all(&self.line) {
                        self.report.error(ErrorEntry {
                            file: display_path(&self.options.out),
                            file_number: 0,
                            reply: None,
                            row: "IO".into(),
                            path: "(temporary file)".into(),
                            message: format!("cannot write: {e}"),
                        });
                    }
                    self.report.persons += 1;
                }
            }
        }
    }

    /// Judges a list of Uitzonderingen (M22).
    fn exceptions(
        &mut self,
        list: &[Uitzondering],
        path: &str,
        err: &dyn Fn(&str, &str, String) -> ErrorEntry,
    ) -> Exceptions {
        let mut state = Exceptions::None;
        for (i, u) in list.iter().enumerate() {
            let here = format!("{path}/Uitzondering[{}]", i + 1);
            let ident = u.identificatie.clone().flatten();
            match u.type_.clone().flatten().as_deref() {
                Some("FOUT") => {
                    if ident.as_deref() == Some("30001") {
                        if !matches!(state, Exceptions::Failed) {
                            state = Exceptions::NotFound;
                        }
                    } else {
                        state = Exceptions::Failed;
                        self.report.error(err(
                            "M22",
                            &here,
                            format!(
                                "Uitzondering FOUT {}: the dossier is unknown; ask again before importing (never read as \"no dossier\")",
                                show_code(&ident)
                            ),
                        ));
                    }
                }
                Some("WAARSCHUWING") | Some("INFORMATIE") => self.warn(
                    "M22",
                    &format!(
                        "Uitzondering {} {}: logged, the dossier is read",
                        u.type_.clone().flatten().unwrap_or_default(),
                        show_code(&ident)
                    ),
                ),
                _ => {
                    state = Exceptions::Failed;
                    self.report.error(err(
                        "M22",
                        &format!("{here}/Type"),
                        format!(
                            "Uitzondering of unknown type {}: the dossier is unknown",
                            show_code(&u.type_.clone().flatten())
                        ),
                    ));
                }
            }
        }
        state
    }
}

#[derive(Debug, Clone, Copy)]
enum Exceptions {
    None,
    NotFound,
    Failed,
}

/// What reading the inputs gave, before the snapshot is written.
struct ReadOutcome {
    report: Report,
    tally: xml::Tally,
    /// Employment-service registrations of no imported person.
    lines_without_dossier: u64,
    /// The person lines in file order, then reply order.
    body: BufWriter<File>,
}

/// Imports; the report says whether a snapshot was written (`ok`). `Err` only when the run
/// could not start or write at all.
///
/// With more than one input file and more than one core, files are read in parallel (one worker
/// thread per file, at most [`MAX_WORKERS`]), each writing its person lines to its own temporary
/// chunk file; the chunks and per-file reports are merged strictly in file order, so the snapshot
/// and the report are those of a sequential run. As soon as any file has an ERROR (or a
/// duplicate INSZ shows up in the shared set), the parallel run is abandoned and the import is
/// rerun sequentially from the start: the refused run's report (which ERRORs, in which order,
/// which counts) is then exactly the sequential one, at the price of reading again.
pub fn import(options: &ImportOptions, progress: &dyn Progress) -> Result<Report, ImportError> {
    import_with_workers(options, progress, default_workers())
}

/// The number of cores, at most [`MAX_WORKERS`] (more threads only add chunk files: the reading
/// is CPU-bound and the merge is cheap).
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

/// [`import`] with a given number of worker threads (1: sequential).
pub fn import_with_workers(
    options: &ImportOptions,
    progress: &dyn Progress,
    workers: usize,
) -> Result<Report, ImportError> {
    let started = Instant::now();
    let id = options.snapshot_id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ImportError::SnapshotId);
    }
    let files = input_files(&options.inputs)?;
    let out_dir = match options.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let workers = workers.min(files.len());
    let outcome = if workers > 1 {
        match read_parallel(options, id, &files, &out_dir, workers, progress) {
            Some(outcome) => outcome,
            None => read_sequential(options, id, &files, &out_dir, progress)?,
        }
    } else {
        read_sequential(options, id, &files, &out_dir, progress)?
    };
    write_out(options, id, &out_dir, outcome, started)
}

fn new_report(options: &ImportOptions, id: &str, files: usize) -> Report {
    Report {
        from: FORMAT_NAME,
        codes_version: options.codes.version.clone(),
        snapshot_id: id.to_string(),
        files: files as u64,
        ..Report::default()
    }
}

fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Reads one input file into `run`; `tick` is called after every reply and stops the reading
/// when it returns false. With `stop_on_error`, the reading also stops at the first ERROR.
fn read_file(
    run: &mut Run,
    path: &Path,
    file_number: u64,
    count: &Arc<AtomicU64>,
    stop_on_error: bool,
    tick: &mut dyn FnMut() -> bool,
) -> Result<xml::Tally, ImportError> {
    let shown = display_path(path);
    let stream = open_input(path, count.clone()).map_err(|error| ImportError::Input {
        path: shown.clone(),
        error,
    })?;
    let mut reader = xml::ReplyReader::new(stream);
    let mut xml_failed = false;
    loop {
        match reader.next_reply() {
            Ok(Some(reply)) => {
                let number = reader.replies;
                run.reply(reply, &shown, file_number, number);
                if !tick() || (stop_on_error && run.report.errors_total > 0) {
                    return Ok(reader.tally);
                }
            }
            Ok(None) => break,
            Err(located) => {
                run.report.error(ErrorEntry {
                    file: shown.clone(),
                    file_number,
                    reply: (reader.replies > 0).then_some(reader.replies),
                    row: "XML".into(),
                    path: located.path.clone(),
                    message: format!("{} (near byte {})", located.error, located.offset),
                });
                xml_failed = true;
                break;
            }
        }
    }
    if reader.replies == 0 && !xml_failed {
        run.report.error(ErrorEntry {
            file: shown.clone(),
            file_number,
            reply: None,
            row: "XML".into(),
            path: "(file)".into(),
            message: "no GeefDossierKBIResponse in this file".into(),
        });
    }
    Ok(reader.tally)
}

/// One thread reads every file in order (the reference behaviour).
fn read_sequential(
    options: &ImportOptions,
    id: &str,
    files: &[PathBuf],
    out_dir: &Path,
    progress: &dyn Progress,
) -> Result<ReadOutcome, ImportError> {
    let out_err = |error| ImportError::Output {
        path: display_path(&options.out),
        error,
    };
    let body = tempfile::tempfile_in(out_dir).map_err(out_err)?;
    let mut report = new_report(options, id, files.len());
    let employment = match &options.employment_service {
        Some(path) => read_employment_service(path, &mut report, files.len() as u64 + 1)?,
        None => HashMap::new(),
    };
    let mut run = Run {
        options,
        report,
        seen: Seen::Own(HashSet::new()),
        employment: Employment::Own(employment),
        body: BufWriter::with_capacity(1 << 20, body),
        line: Vec::with_capacity(4096),
        warn_order: Vec::new(),
    };
    progress.start("import", total_bytes(files));
    let count = Arc::new(AtomicU64::new(0));
    let mut reported = 0u64;
    let mut tally = xml::Tally::default();
    for (i, path) in files.iter().enumerate() {
        let mut tick = || {
            let now = count.load(Ordering::Relaxed);
            if now - reported >= 1 << 20 {
                progress.advance(now - reported);
                reported = now;
            }
            true
        };
        tally.merge(read_file(
            &mut run,
            path,
            i as u64 + 1,
            &count,
            false,
            &mut tick,
        )?);
    }
    let now = count.load(Ordering::Relaxed);
    progress.advance(now.saturating_sub(reported));
    progress.finish();
    let Run {
        mut report,
        employment,
        body,
        ..
    } = run;
    report.bytes = now;
    let lines_without_dossier = match employment {
        Employment::Own(left) => left.values().map(|v| v.len() as u64).sum(),
        Employment::Shared { .. } => 0,
    };
    Ok(ReadOutcome {
        report,
        tally,
        lines_without_dossier,
        body,
    })
}

/// What a worker hands over for one file read without an ERROR.
struct FilePart {
    report: Report,
    warn_order: Vec<(&'static str, String)>,
    tally: xml::Tally,
    /// The file's person lines, rewound.
    chunk: File,
    /// Employment-service registrations its persons took.
    used: u64,
}

/// Reads one file on a worker thread; `None` when it has an ERROR (or cannot be read, or the
/// run was cancelled): the caller then falls back to the sequential run.
#[allow(clippy::too_many_arguments)]
fn read_file_alone(
    options: &ImportOptions,
    path: &Path,
    file_number: u64,
    out_dir: &Path,
    seen: &Mutex<HashSet<u64>>,
    employment: &HashMap<u64, Vec<NaiveDate>>,
    count: &Arc<AtomicU64>,
    cancel: &AtomicBool,
) -> Option<FilePart> {
    let chunk = tempfile::tempfile_in(out_dir).ok()?;
    let mut run = Run {
        options,
        report: Report {
            employment_service: options
                .employment_service
                .as_ref()
                .map(|_| EmploymentReport::default()),
            ..Report::default()
        },
        seen: Seen::Shared(seen),
        employment: Employment::Shared {
            map: employment,
            used: 0,
        },
        body: BufWriter::with_capacity(1 << 20, chunk),
        line: Vec::with_capacity(4096),
        warn_order: Vec::new(),
    };
    let tally = read_file(&mut run, path, file_number, count, true, &mut || {
        !cancel.load(Ordering::Relaxed)
    })
    .ok()?;
    if cancel.load(Ordering::Relaxed) || run.report.errors_total > 0 {
        return None;
    }
    let Run {
        report,
        employment,
        body,
        warn_order,
        ..
    } = run;
    let used = match employment {
        Employment::Shared { used, .. } => used,
        Employment::Own(_) => 0,
    };
    let mut chunk = body.into_inner().ok()?;
    chunk.rewind().ok()?;
    Some(FilePart {
        report,
        warn_order,
        tally,
        chunk,
        used,
    })
}

/// Adds one file's part to the run's report and its person lines to the body, in file order.
fn merge_part(report: &mut Report, part: &mut FilePart, body: &mut File) -> io::Result<()> {
    let p = &part.report;
    report.replies += p.replies;
    report.dossiers += p.dossiers;
    report.not_found += p.not_found;
    report.persons += p.persons;
    for (kind, n) in &p.events {
        *report.events.entry(kind).or_insert(0) += n;
    }
    // Replaying the messages in their order of first appearance gives each the entry (or the
    // "(other messages)" count) it gets in a sequential run: a message is listed on its own
    // exactly when it is among the first MAX_MESSAGES_PER_ROW distinct ones of its row.
    for (row, message) in &part.warn_order {
        let n = p.warnings[row].messages[message];
        report.warn_n(row, message, n);
    }
    for (row, w) in &p.warnings {
        if let Some(&n) = w.messages.get(OTHER_MESSAGES) {
            let entry = report.warnings.entry(row).or_default();
            entry.total += n;
            *entry.messages.entry(OTHER_MESSAGES.into()).or_insert(0) += n;
        }
    }
    if let (Some(es), Some(part_es)) = (
        report.employment_service.as_mut(),
        p.employment_service.as_ref(),
    ) {
        es.persons_with_dossier += part_es.persons_with_dossier;
    }
    io::copy(&mut part.chunk, body)?;
    Ok(())
}

/// Files read by `workers` threads, merged in file order; `None` when the sequential run must
/// give the answer (an ERROR anywhere, a duplicate INSZ, a file that cannot be read).
fn read_parallel(
    options: &ImportOptions,
    id: &str,
    files: &[PathBuf],
    out_dir: &Path,
    workers: usize,
    progress: &dyn Progress,
) -> Option<ReadOutcome> {
    let mut body = tempfile::tempfile_in(out_dir).ok()?;
    let mut report = new_report(options, id, files.len());
    let employment = match &options.employment_service {
        Some(path) => read_employment_service(path, &mut report, files.len() as u64 + 1).ok()?,
        None => HashMap::new(),
    };
    if report.errors_total > 0 {
        return None;
    }
    let seen = Mutex::new(HashSet::new());
    let cancel = AtomicBool::new(false);
    // (next file to take, files merged): a worker waits rather than run more than FILES_AHEAD
    // files ahead of the merge.
    let window = Mutex::new((0usize, 0usize));
    let moved = Condvar::new();
    let count = Arc::new(AtomicU64::new(0));
    let mut tally = xml::Tally::default();
    let mut used = 0u64;
    let mut failed = false;
    let mut reported = 0u64;
    progress.start("import", total_bytes(files));
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Option<FilePart>)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (seen, cancel, window, moved, count, employment) =
                (&seen, &cancel, &window, &moved, &count, &employment);
            scope.spawn(move || loop {
                let index = {
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    while !cancel.load(Ordering::Relaxed)
                        && w.0 < files.len()
                        && w.0 >= w.1 + FILES_AHEAD
                    {
                        w = moved.wait(w).unwrap_or_else(|e| e.into_inner());
                    }
                    if cancel.load(Ordering::Relaxed) || w.0 >= files.len() {
                        break;
                    }
                    w.0 += 1;
                    w.0 - 1
                };
                let part = read_file_alone(
                    options,
                    &files[index],
                    index as u64 + 1,
                    out_dir,
                    seen,
                    employment,
                    count,
                    cancel,
                );
                if part.is_none() {
                    cancel.store(true, Ordering::Relaxed);
                    moved.notify_all();
                }
                if tx.send((index, part)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Option<FilePart>> = BTreeMap::new();
        let mut merged = 0usize;
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok((index, part)) => {
                    pending.insert(index, part);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = count.load(Ordering::Relaxed);
            if now - reported >= 1 << 20 {
                progress.advance(now - reported);
                reported = now;
            }
            while let Some(part) = pending.remove(&merged) {
                match part {
                    Some(mut part) if !failed => {
                        if merge_part(&mut report, &mut part, &mut body).is_err() {
                            failed = true;
                        }
                        tally.merge(part.tally);
                        used += part.used;
                    }
                    _ => failed = true,
                }
                if failed {
                    cancel.store(true, Ordering::Relaxed);
                }
                merged += 1;
                window.lock().unwrap_or_else(|e| e.into_inner()).1 = merged;
                moved.notify_all();
            }
        }
    });
    let now = count.load(Ordering::Relaxed);
    progress.advance(now.saturating_sub(reported));
    progress.finish();
    if failed || cancel.load(Ordering::Relaxed) {
        return None;
    }
    report.bytes = now;
    let lines: u64 = employment.values().map(|v| v.len() as u64).sum();
    Some(ReadOutcome {
        report,
        tally,
        lines_without_dossier: lines.saturating_sub(used),
        body: BufWriter::with_capacity(1 << 20, body),
    })
}

/// Writes the snapshot when the reading had no ERROR (header first, then the person lines).
fn write_out(
    options: &ImportOptions,
    id: &str,
    out_dir: &Path,
    outcome: ReadOutcome,
    started: Instant,
) -> Result<Report, ImportError> {
    let out_err = |error| ImportError::Output {
        path: display_path(&options.out),
        error,
    };
    let ReadOutcome {
        mut report,
        tally,
        lines_without_dossier,
        body,
    } = outcome;
    report.ignored = tally.ignored;
    report.unknown_elements = tally.unknown;
    let mut facts: Vec<&'static str> = DOSSIER_FACTS.to_vec();
    if let Some(es) = report.employment_service.as_mut() {
        es.lines_without_dossier = lines_without_dossier;
        facts.push("EMPLOYMENT_SERVICE_REGISTRATION");
    }
    report.facts = facts.clone();
    if report.errors_total > 0 {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mut body = body.into_inner().map_err(|e| out_err(e.into_error()))?;
    body.rewind().map_err(out_err)?;
    let mut sources = vec![serde_json::json!({
        "kind": "kbi-dossier", "version": "01.00",
        "files": report.files, "dossiers": report.dossiers,
    })];
    if let Some(es) = &report.employment_service {
        sources.push(serde_json::json!({
            "kind": "employment-service", "files": 1, "registrations": es.lines,
        }));
    }
    let header = header_line(
        id,
        options.extracted_at,
        report.persons,
        &facts,
        serde_json::Value::Array(sources),
    );
    let target = tempfile::NamedTempFile::new_in(out_dir).map_err(out_err)?;
    write_snapshot(&options.out, target.as_file(), header.as_bytes(), &mut body)
        .map_err(out_err)?;
    target.as_file().sync_all().map_err(out_err)?;
    target.persist(&options.out).map_err(|e| out_err(e.error))?;
    report.ok = true;
    report.out = Some(display_path(&options.out));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
