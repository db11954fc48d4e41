//! Offline checks of audit files: [`verify`] (is the chain whole?) and [`search`] (who
//! consulted this INSZ, when?).

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::record::{file_date, line_hash, AuditRecord, GENESIS_PREV};
use super::{mask_numbers, AuditError};
use crate::domain::Insz;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files read, in chain order.
    pub files: Vec<PathBuf>,
    /// Records that chained correctly before the first problem (all of them when none).
    pub records: u64,
    /// `seq` of the first record read.
    pub first_seq: Option<u64>,
    /// `seq` and line hash (hex) of the last good record: keep them elsewhere to anchor the end
    /// of the chain (cutting records off the end cannot be seen from the files alone).
    pub last_seq: Option<u64>,
    pub last_hash: Option<String>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// Whether the files start at the very first record of the log (seq 1, zero `prev`); when
    /// not, the chain was checked from the first record given on.
    pub fn starts_at_genesis(&self) -> bool {
        self.first_seq == Some(1)
    }
}

/// Where the chain breaks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: u64,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}: {}",
            self.file.display(),
            self.line,
            self.kind
        )
    }
}

/// What is wrong at the problem's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file cannot be read.
    Unreadable(String),
    /// The line is not a valid audit record (the parser's message, numbers masked).
    Malformed(String),
    /// The last line has no `\n`: a torn write (the log cuts it on its next open).
    Unterminated,
    /// The line's `seq` is not the next one: records deleted, reordered or duplicated, or files
    /// missing between two given files.
    Sequence { expected: u64, found: u64 },
    /// The line's `prev` is not the hash of the line before: that record was altered (or
    /// replaced).
    Chain { seq: u64 },
    /// The first record of the log (seq 1) does not start from the zero hash.
    Genesis,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Unreadable(e) => write!(f, "cannot read the file: {e}"),
            ProblemKind::Malformed(e) => write!(f, "not a valid audit record: {e}"),
            ProblemKind::Unterminated => {
                write!(f, "last line is incomplete (torn write, no newline)")
            }
            ProblemKind::Sequence { expected, found } if found > expected => write!(
                f,
                "expected record seq {expected}, found {found}: record(s) {expected}..{} missing \
                 (deleted, or reordered)",
                found - 1
            ),
            ProblemKind::Sequence { expected, found } => write!(
                f,
                "expected record seq {expected}, found {found}: records reordered or duplicated"
            ),
            ProblemKind::Chain { seq } => write!(
                f,
                "record seq {seq} does not carry the hash of the line before: the previous \
                 record was altered or replaced"
            ),
            ProblemKind::Genesis => write!(f, "record seq 1 must have prev {GENESIS_PREV}"),
        }
    }
}

/// Orders audit files for the chain: by the day in their name (`audit-YYYY-MM-DD.jsonl`), then
/// by name; the same file given twice counts once. So files given out of order are read in
/// chain order, and a missing day shows as a sequence gap.
fn chain_order(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut files: Vec<PathBuf> = files
        .iter()
        .filter(|path| seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| (*path).clone())))
        .cloned()
        .collect();
    let key = |path: &PathBuf| {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        (file_date(&name), name)
    };
    files.sort_by_key(key);
    files
}

/// Checks the hash chain over `files` (any order; see [`chain_order`]) and reports the first
/// problem with its file and line.
pub fn verify(files: &[PathBuf]) -> Report {
    let files = chain_order(files);
    let mut report = Report {
        files: files.clone(),
        records: 0,
        first_seq: None,
        last_seq: None,
        last_hash: None,
        problem: None,
    };
    let mut last: Option<(u64, String)> = None;
    for path in &files {
        if let Err(problem) = verify_file(path, &mut last, &mut report) {
            report.problem = Some(problem);
            break;
        }
    }
    if let Some((seq, hash)) = last {
        report.last_seq = Some(seq);
        report.last_hash = Some(hash);
    }
    report
}

fn verify_file(
    path: &Path,
    last: &mut Option<(u64, String)>,
    report: &mut Report,
) -> Result<(), Problem> {
    let problem = |line, kind| Problem {
        file: path.to_path_buf(),
        line,
        kind,
    };
    let file = File::open(path).map_err(|e| problem(0, ProblemKind::Unreadable(e.to_string())))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| problem(line_no + 1, ProblemKind::Unreadable(e.to_string())))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Err(problem(line_no, ProblemKind::Unterminated));
        }
        let line = &buf[..buf.len() - 1];
        let record: AuditRecord = serde_json::from_slice(line).map_err(|e| {
            problem(
                line_no,
                ProblemKind::Malformed(mask_numbers(&e.to_string())),
            )
        })?;
        match last {
            None => {
                report.first_seq = Some(record.seq);
                if record.seq == 1 && record.prev != GENESIS_PREV {
                    return Err(problem(line_no, ProblemKind::Genesis));
                }
            }
            Some((seq, hash)) => {
                if record.seq != *seq + 1 {
                    return Err(problem(
                        line_no,
                        ProblemKind::Sequence {
                            expected: *seq + 1,
                            found: record.seq,
                        },
                    ));
                }
                if record.prev != *hash {
                    return Err(problem(line_no, ProblemKind::Chain { seq: record.seq }));
                }
            }
        }
        *last = Some((record.seq, hex::encode(line_hash(line))));
        report.records += 1;
    }
}

/// The audit files of `dir` that can hold records dated `from..=to` (either bound open), in
/// chain order. A file may hold records of the day before its name (the midnight rule of
/// [`super::AuditLog`]), so the day after `to` is included too.
pub fn files_in(
    dir: &Path,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<(NaiveDate, PathBuf)> = super::log::audit_files(dir)?
        .into_iter()
        .filter(|(date, _)| from.is_none_or(|from| *date >= from))
        .filter(|(date, _)| to.is_none_or(|to| date.pred_opt().is_none_or(|d| d <= to)))
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// What [`search`] found.
#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    /// The records about the INSZ, in file order.
    pub records: Vec<AuditRecord>,
    /// Lines that mention the INSZ but could not be read as records (file, line): the answer
    /// to the data subject may be incomplete, and `verify` should be run.
    pub unreadable: Vec<(PathBuf, u64)>,
}

/// The records about `insz` with a `time` dated `from..=to` (UTC days; either bound open): who
/// consulted the person's data, and when.
pub fn search(
    files: &[PathBuf],
    insz: Insz,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<SearchResult, AuditError> {
    let needle = format!("\"insz\":\"{insz}\"");
    let needle = needle.as_bytes();
    let mut result = SearchResult::default();
    for path in chain_order(files) {
        let file = File::open(&path).map_err(|e| AuditError::io(&path, "open", e))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| AuditError::io(&path, "read", e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            // Cheap filter first: most lines are about somebody else.
            if !buf.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            match serde_json::from_slice::<AuditRecord>(line) {
                Ok(record) if record.insz == Some(insz) => {
                    let day = record.date();
                    if from.is_none_or(|from| day >= from) && to.is_none_or(|to| day <= to) {
                        result.records.push(record);
                    }
                }
                Ok(_) => {}
                Err(_) => result.unreadable.push((path.clone(), line_no)),
            }
        }
    }
    Ok(result)
}
