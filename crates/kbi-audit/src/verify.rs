//! Offline checks of audit files: [`verify`] (is the chain whole?) and [`search`] (who
//! consulted this INSZ, when?).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::VerifyingKey;

use super::checkpoint::{read_checkpoints, Checkpoint};
use super::record::{line_hash, segment_of, AuditRecord, GENESIS_PREV};
use super::{mask_numbers, AuditError};
use kbi_core::domain::Insz;
use kbi_signing as signing;

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
    /// of the chain (checkpoints do this for the log).
    pub last_seq: Option<u64>,
    pub last_hash: Option<String>,
    /// Zero bytes after the last record of the last file: space preallocated for records to
    /// come, not a torn record.
    pub preallocated_bytes: u64,
    /// Sequence numbers the writer set aside (first, last): given to records that were never
    /// acknowledged (a torn tail, a failed write or sync), and never given again.
    /// The chain runs on across them (the next record carries the hash of the record before).
    pub skipped: Vec<(u64, u64)>,
    /// What the checkpoints vouched for (when checked: [`verify_anchored`]).
    pub checkpoints: Option<CheckpointReport>,
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

/// The checkpoints to check the chain against: the file and the public key(s).
#[derive(Debug, Clone)]
pub struct Anchors {
    pub file: PathBuf,
    /// The keys a checkpoint may be signed with (more than one across a key rotation).
    pub keys: Vec<VerifyingKey>,
    /// The keys were given by whoever verifies (`--public-key`), not taken from beside the log:
    /// then every checkpoint must verify under one of them, and at least one must exist.
    /// Unpinned, the key beside the log is only as trustworthy as the directory, and a
    /// checkpoint naming another key (an earlier one) is skipped and counted.
    pub pinned: bool,
}

impl Anchors {
    /// The checkpoint file and the public key (PEM) found beside it: not pinned.
    pub fn load(file: &Path, public_key: &Path) -> Result<Anchors, signing::KeyError> {
        Ok(Anchors {
            file: file.to_path_buf(),
            keys: vec![signing::read_public_key(public_key)?],
            pinned: false,
        })
    }

    /// The checkpoint file and the public keys (PEM) the verifier trusts: pinned.
    pub fn pinned(file: &Path, public_keys: &[PathBuf]) -> Result<Anchors, signing::KeyError> {
        Ok(Anchors {
            file: file.to_path_buf(),
            keys: public_keys
                .iter()
                .map(|path| signing::read_public_key(path))
                .collect::<Result<_, _>>()?,
            pinned: true,
        })
    }
}

/// What the checkpoints said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    pub file: PathBuf,
    /// Fingerprints of the public keys the signatures were checked with.
    pub keys: Vec<String>,
    /// Whether the keys were pinned by the verifier ([`Anchors::pinned`]).
    pub pinned: bool,
    /// Lines of the checkpoint file read.
    pub checked: usize,
    /// Checkpoints signed by one of the keys.
    pub valid: usize,
    /// Of those, in the old format 1 (their `key` field was not covered by the signature).
    pub format_1: usize,
    /// Unpinned only: checkpoints naming another key (an earlier key): skipped, not counted.
    pub other_key: usize,
    /// The latest valid checkpoint.
    pub latest: Option<Checkpoint>,
    /// Records after the latest checkpoint: whole in the chain, but no checkpoint vouches for
    /// them yet (cutting them off would not show).
    pub unanchored: u64,
}

/// Where the chain breaks first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: u64,
    /// Byte offset in `file` of that line.
    pub offset: u64,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {} (byte {}): {}",
            self.file.display(),
            self.line,
            self.offset,
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
    /// A torn record: the last line has no `\n` (before the end of the file or the preallocated
    /// zeros). An interrupted write; the log sets it aside on its next open.
    Unterminated,
    /// Non-zero bytes after the preallocated zeros: a torn write that reached the disk out of
    /// order (set aside on the next open), or bytes put there by someone else.
    AfterPreallocated,
    /// The line's `seq` is not the next one: records deleted, reordered or duplicated, or files
    /// missing between two given files.
    Sequence { expected: u64, found: u64 },
    /// The line's `prev` is not the hash of the line before: that record was altered (or
    /// replaced).
    Chain { seq: u64 },
    /// The first record of the log (seq 1) does not start from the zero hash.
    Genesis,
    /// A line of the checkpoint file is not a checkpoint signed by the key.
    BadCheckpoint(String),
    /// Record `seq` is not the record a checkpoint vouched for: changed after the checkpoint.
    CheckpointMismatch { seq: u64 },
    /// A checkpoint vouched for record `seq`, inside the chain's range, but the chain has no
    /// such record: it was cut off and the log resumed after the checkpoint (numbers set aside).
    MissingAtCheckpoint { seq: u64, time: String },
    /// A key was pinned but no checkpoint is signed by it: nothing anchors the chain.
    NoPinnedCheckpoint,
    /// The chain ends before the record a checkpoint vouched for: records cut off or deleted.
    MissingAfterCheckpoint {
        last_seq: u64,
        checkpoint_seq: u64,
        time: String,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Unreadable(e) => write!(f, "cannot read the file: {e}"),
            ProblemKind::Malformed(e) => write!(f, "not a valid audit record: {e}"),
            ProblemKind::Unterminated => {
                write!(f, "torn record (incomplete last line, no newline)")
            }
            ProblemKind::AfterPreallocated => write!(
                f,
                "bytes after the preallocated (zero) space: a torn write, or bytes added \
                 outside the service"
            ),
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
            ProblemKind::BadCheckpoint(e) => write!(f, "not a valid signed checkpoint: {e}"),
            ProblemKind::CheckpointMismatch { seq } => write!(
                f,
                "record seq {seq} is not the record the checkpoint vouched for: changed after \
                 the checkpoint"
            ),
            ProblemKind::MissingAtCheckpoint { seq, time } => write!(
                f,
                "the checkpoint of {time} vouched for record seq {seq}, which the chain does not \
                 hold: records cut off, and the log resumed after the checkpoint"
            ),
            ProblemKind::NoPinnedCheckpoint => write!(
                f,
                "no checkpoint is signed by the pinned key: the end of the chain is not anchored"
            ),
            ProblemKind::MissingAfterCheckpoint {
                last_seq,
                checkpoint_seq,
                time,
            } => write!(
                f,
                "the chain ends at seq {last_seq}, but the checkpoint of {time} vouched for \
                 records up to seq {checkpoint_seq}: record(s) {}..{checkpoint_seq} missing \
                 (cut off or deleted)",
                last_seq + 1
            ),
        }
    }
}

/// How a file ended, after its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Its last line ends the file.
    Clean,
    /// Zeros (preallocated space) from `at` to the end.
    Zeros { at: u64, bytes: u64 },
    /// A line without `\n` starts at `at`.
    Torn { line: u64, at: u64 },
    /// Zeros from `zeros_at`, then something else at `at`.
    AfterZeros { line: u64, at: u64 },
}

/// Calls `each(line_no, offset, line)` for every whole line of `path` up to the end of the file
/// or the first NUL byte (the start of preallocated space), then says how the file ended.
/// Memory stays bounded by the longest line, whatever the file's size.
pub(crate) fn read_lines<E>(
    path: &Path,
    mut each: impl FnMut(u64, u64, &[u8]) -> Result<(), E>,
    io_error: impl Fn(u64, std::io::Error) -> E,
) -> Result<End, E> {
    let file = File::open(path).map_err(|e| io_error(0, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let (mut offset, mut line_start, mut line_no) = (0u64, 0u64, 0u64);
    loop {
        let buf = reader.fill_buf().map_err(|e| io_error(line_no + 1, e))?;
        if buf.is_empty() {
            break;
        }
        match buf.iter().position(|&b| b == b'\n' || b == 0) {
            Some(i) if buf[i] == b'\n' => {
                line.extend_from_slice(&buf[..i]);
                reader.consume(i + 1);
                offset += i as u64 + 1;
                line_no += 1;
                each(line_no, line_start, &line)?;
                line.clear();
                line_start = offset;
            }
            Some(i) => {
                line.extend_from_slice(&buf[..i]);
                reader.consume(i);
                offset += i as u64;
                if !line.is_empty() {
                    return Ok(End::Torn {
                        line: line_no + 1,
                        at: line_start,
                    });
                }
                // Preallocated space: the rest must be zeros.
                let zeros_at = offset;
                let mut chunk = vec![0u8; 1 << 16];
                loop {
                    let n = reader
                        .read(&mut chunk)
                        .map_err(|e| io_error(line_no + 1, e))?;
                    if n == 0 {
                        return Ok(End::Zeros {
                            at: zeros_at,
                            bytes: offset - zeros_at,
                        });
                    }
                    if let Some(j) = chunk[..n].iter().position(|&b| b != 0) {
                        return Ok(End::AfterZeros {
                            line: line_no + 1,
                            at: offset + j as u64,
                        });
                    }
                    offset += n as u64;
                }
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                reader.consume(n);
                offset += n as u64;
            }
        }
    }
    if line.is_empty() {
        Ok(End::Clean)
    } else {
        Ok(End::Torn {
            line: line_no + 1,
            at: line_start,
        })
    }
}

/// Orders audit files for the chain: by the day and part in their name
/// (`audit-YYYY-MM-DD[.N].jsonl`), then by name; the same file given twice counts once. So files
/// given out of order are read in chain order, and a missing segment shows as a sequence gap.
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
        (segment_of(&name), name)
    };
    files.sort_by_key(key);
    files
}

/// Checks the hash chain over `files` (any order; see [`chain_order`]) and reports the first
/// problem with its file and line. The end of the chain is not anchored: see
/// [`verify_anchored`].
pub fn verify(files: &[PathBuf]) -> Report {
    verify_anchored(files, None)
}

/// The signed checkpoints of a file: valid ones by `seq` (with their line), and the first bad
/// line.
struct Loaded {
    by_seq: HashMap<u64, (u64, Checkpoint)>,
    report: CheckpointReport,
    bad: Option<Problem>,
}

fn load_checkpoints(anchors: &Anchors) -> Loaded {
    let fingerprints: Vec<String> = anchors.keys.iter().map(signing::key_fingerprint).collect();
    let mut loaded = Loaded {
        by_seq: HashMap::new(),
        report: CheckpointReport {
            file: anchors.file.clone(),
            keys: fingerprints.clone(),
            pinned: anchors.pinned,
            checked: 0,
            valid: 0,
            format_1: 0,
            other_key: 0,
            latest: None,
            unanchored: 0,
        },
        bad: None,
    };
    let problem = |line, detail: String| Problem {
        file: anchors.file.clone(),
        line,
        offset: 0,
        kind: ProblemKind::BadCheckpoint(detail),
    };
    let lines = match read_checkpoints(&anchors.file) {
        Ok(lines) => lines,
        Err(error) => {
            loaded.bad = Some(problem(0, format!("cannot read the file: {error}")));
            return loaded;
        }
    };
    for (line, parsed) in lines {
        loaded.report.checked += 1;
        let checkpoint = match parsed {
            Ok(checkpoint) => checkpoint,
            Err(detail) => {
                loaded.bad.get_or_insert_with(|| problem(line, detail));
                continue;
            }
        };
        let mut failure = None;
        let signed = anchors.keys.iter().any(|key| match checkpoint.check(key) {
            Ok(()) => true,
            Err(error) => {
                failure.get_or_insert(error.to_string());
                false
            }
        });
        if !signed {
            let ours = fingerprints.contains(&checkpoint.key);
            if !anchors.pinned && !ours && !key_field_edited(&checkpoint, &anchors.keys) {
                // Unpinned: a checkpoint of an earlier key (rotated) is skipped and counted.
                loaded.report.other_key += 1;
                continue;
            }
            let detail = if key_field_edited(&checkpoint, &anchors.keys) {
                "its `key` field was edited (the signature is by the key, over another key \
                 line)"
                    .to_owned()
            } else if anchors.pinned && !ours {
                "not signed by the pinned key".to_owned()
            } else {
                failure.unwrap_or_default()
            };
            loaded.bad.get_or_insert_with(|| {
                problem(line, format!("checkpoint seq {}: {detail}", checkpoint.seq))
            });
            continue;
        }
        loaded.report.valid += 1;
        if checkpoint.v == 1 {
            loaded.report.format_1 += 1;
        }
        if loaded
            .report
            .latest
            .as_ref()
            .is_none_or(|latest| checkpoint.seq >= latest.seq)
        {
            loaded.report.latest = Some(checkpoint.clone());
        }
        loaded.by_seq.insert(checkpoint.seq, (line, checkpoint));
    }
    loaded
}

/// Whether `checkpoint` is signed by one of `keys` once its `key` field names that key: the
/// field was changed after signing (format 1 did not sign it, format 2 does).
fn key_field_edited(checkpoint: &Checkpoint, keys: &[VerifyingKey]) -> bool {
    keys.iter().any(|key| {
        let fingerprint = signing::key_fingerprint(key);
        checkpoint.key != fingerprint && {
            let mut restored = checkpoint.clone();
            restored.key = fingerprint;
            restored.check(key).is_ok()
        }
    })
}

/// [`verify`], and with `anchors` also: every checkpoint signed by the key vouches for its
/// record (a record changed after a checkpoint shows), and the chain must reach the latest one
/// (records cut off or deleted up to it show). Records after the latest checkpoint are counted
/// as unanchored.
pub fn verify_anchored(files: &[PathBuf], anchors: Option<&Anchors>) -> Report {
    let files = chain_order(files);
    let mut report = Report {
        files: files.clone(),
        records: 0,
        first_seq: None,
        last_seq: None,
        last_hash: None,
        preallocated_bytes: 0,
        skipped: Vec::new(),
        checkpoints: None,
        problem: None,
    };
    let loaded = anchors.map(load_checkpoints);
    let vouched = loaded.as_ref().map(|l| &l.by_seq);
    let mut met = HashSet::new();
    let mut last: Option<(u64, String)> = None;
    let mut end_line = (PathBuf::new(), 0u64, 0u64);
    for path in &files {
        match verify_file(path, &mut last, &mut report, vouched, &mut met) {
            Ok((lines, end)) => end_line = (path.clone(), lines + 1, end),
            Err(problem) => {
                report.problem = Some(problem);
                break;
            }
        }
    }
    if let Some((seq, hash)) = &last {
        report.last_seq = Some(*seq);
        report.last_hash = Some(hash.clone());
    }
    if let Some(loaded) = loaded {
        let mut checkpoints = loaded.report;
        let last_seq = report.last_seq.unwrap_or(0);
        if report.problem.is_none() {
            report.problem = loaded.bad;
        }
        // A checkpoint inside the range of records read must have met its record: a jump in
        // the numbers (the writer's own after a torn tail) cannot hide records it vouched for.
        if report.problem.is_none() {
            let first = report.first_seq.unwrap_or(1);
            let mut missed: Vec<&(u64, Checkpoint)> = loaded
                .by_seq
                .values()
                .filter(|(_, c)| c.seq >= first && c.seq <= last_seq && !met.contains(&c.seq))
                .collect();
            missed.sort_by_key(|(_, c)| c.seq);
            if let Some((line, checkpoint)) = missed.first() {
                report.problem = Some(Problem {
                    file: anchors.map(|a| a.file.clone()).unwrap_or_default(),
                    line: *line,
                    offset: 0,
                    kind: ProblemKind::MissingAtCheckpoint {
                        seq: checkpoint.seq,
                        time: checkpoint.time.clone(),
                    },
                });
            }
        }
        if report.problem.is_none() && checkpoints.pinned && checkpoints.valid == 0 {
            report.problem = Some(Problem {
                file: checkpoints.file.clone(),
                line: 0,
                offset: 0,
                kind: ProblemKind::NoPinnedCheckpoint,
            });
        }
        if let Some(latest) = &checkpoints.latest {
            if report.problem.is_none() && latest.seq > last_seq {
                report.problem = Some(Problem {
                    file: end_line.0,
                    line: end_line.1,
                    offset: end_line.2,
                    kind: ProblemKind::MissingAfterCheckpoint {
                        last_seq,
                        checkpoint_seq: latest.seq,
                        time: latest.time.clone(),
                    },
                });
            }
            checkpoints.unanchored = report.records.saturating_sub(
                // Records up to the checkpoint among those read.
                report
                    .first_seq
                    .map_or(0, |first| (latest.seq + 1).saturating_sub(first))
                    .min(report.records),
            );
        } else {
            checkpoints.unanchored = report.records;
        }
        report.checkpoints = Some(checkpoints);
    }
    report
}

/// Checks one file; returns its count of lines and where its records end.
fn verify_file(
    path: &Path,
    last: &mut Option<(u64, String)>,
    report: &mut Report,
    vouched: Option<&HashMap<u64, (u64, Checkpoint)>>,
    met: &mut HashSet<u64>,
) -> Result<(u64, u64), Problem> {
    let problem = |line, offset, kind| Problem {
        file: path.to_path_buf(),
        line,
        offset,
        kind,
    };
    let mut lines = 0;
    let mut data_end = 0;
    report.preallocated_bytes = 0;
    let end = read_lines(
        path,
        |line_no, offset, line| {
            lines = line_no;
            data_end = offset + line.len() as u64 + 1;
            let record: AuditRecord = serde_json::from_slice(line).map_err(|e| {
                problem(
                    line_no,
                    offset,
                    ProblemKind::Malformed(mask_numbers(&e.to_string())),
                )
            })?;
            match last {
                None => {
                    report.first_seq = Some(record.seq);
                    if record.seq == 1 && record.prev != GENESIS_PREV {
                        return Err(problem(line_no, offset, ProblemKind::Genesis));
                    }
                }
                Some((seq, hash)) => {
                    let expected = *seq + 1;
                    // A jump is the writer's own only when the record still carries the hash
                    // of the line before: nothing was taken out between them.
                    if record.seq > expected && record.prev == *hash {
                        report.skipped.push((expected, record.seq - 1));
                    } else if record.seq != expected {
                        return Err(problem(
                            line_no,
                            offset,
                            ProblemKind::Sequence {
                                expected,
                                found: record.seq,
                            },
                        ));
                    }
                    if record.prev != *hash {
                        return Err(problem(
                            line_no,
                            offset,
                            ProblemKind::Chain { seq: record.seq },
                        ));
                    }
                }
            }
            let hash = hex::encode(line_hash(line));
            if let Some((_, checkpoint)) = vouched.and_then(|v| v.get(&record.seq)) {
                met.insert(record.seq);
                if checkpoint.hash != hash {
                    return Err(problem(
                        line_no,
                        offset,
                        ProblemKind::CheckpointMismatch { seq: record.seq },
                    ));
                }
            }
            *last = Some((record.seq, hash));
            report.records += 1;
            Ok(())
        },
        |line_no, error| problem(line_no, 0, ProblemKind::Unreadable(error.to_string())),
    )?;
    match end {
        End::Clean => Ok((lines, data_end)),
        End::Zeros { bytes, .. } => {
            report.preallocated_bytes = bytes;
            Ok((lines, data_end))
        }
        End::Torn { line, at } => Err(problem(line, at, ProblemKind::Unterminated)),
        End::AfterZeros { line, at } => Err(problem(line, at, ProblemKind::AfterPreallocated)),
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
    Ok(super::log::audit_files(dir)?
        .into_iter()
        .filter(|(date, _)| from.is_none_or(|from| *date >= from))
        .filter(|(date, _)| to.is_none_or(|to| date.pred_opt().is_none_or(|d| d <= to)))
        .map(|(_, path)| path)
        .collect())
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
        read_lines(
            &path,
            |line_no, _, line| {
                // Cheap filter first: most lines are about somebody else.
                if !line.windows(needle.len()).any(|w| w == needle) {
                    return Ok(());
                }
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
                Ok(())
            },
            |_, error| AuditError::io(&path, "read", error),
        )?;
    }
    Ok(result)
}
