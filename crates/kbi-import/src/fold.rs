//! The in-order fold of the import: what [`crate::read`] gives, file by file and reply by reply,
//! becomes the report, and, when no ERROR was met, the snapshot.
//!
//! One fold for two consumers: the import (accepted persons are counted; their lines, written
//! by the workers, are kept in order) and the export's [`crate::read_dossiers`] (accepted
//! persons, read in profile mode, are handed to its `each`). What makes a person accepted, and
//! the report, are the same code for both.
//!
//! Here and only here: the counts; the ERRORs in file and reply order; a second dossier for one
//! INSZ (M23: the later one is named); nothing counted as written after the first ERROR; the
//! employment-service registrations taken by the persons written (the rest are "without a
//! dossier"); the files' skipped elements; and the writing (header first, then the person
//! lines, into one temporary file renamed into place).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kbi_core::io::Progress;

use crate::employment::read_employment_service;
use crate::input::{Listing, SKIPPED_SPECIAL, SKIPPED_SYMLINK};
use crate::line::{header_line, write_snapshot};
use crate::mapping::dossier_facts;
use crate::read::{kind_name, read, Batch, Item, Lines, MapperFactory, ReadOptions, Segment};
use crate::report::{display_path, ErrorEntry, Report};
use crate::xml::Tally;
use crate::{DossierRead, ImportError, ImportOptions, RunOptions, FORMAT_NAME};

/// The state of the fold.
struct Fold<'a, 'e> {
    report: Report,
    files: &'a Listing,
    seen: HashSet<u64>,
    /// The file being folded (0-based) and its name as shown.
    file: usize,
    shown: String,
    /// Accepted persons' events per type ([`kind_name`]).
    events: [u64; 13],
    /// Employment-service registrations taken by written persons.
    used: u64,
    segments: Vec<Segment>,
    tally: Tally,
    out_shown: String,
    refused: &'a AtomicBool,
    stopped: Option<ImportError>,
    bytes: &'a AtomicU64,
    reported: u64,
    /// The export's consumer of the mapped persons ([`Item::Kept`]); `None` in an import.
    each: Option<&'e mut dyn EachKept>,
}

/// The fold's side of profile mode: a batch's mapped persons ([`Batch::kept`]), then for each
/// [`Item::Kept`] in order whether it was accepted (handed on) or not (dropped).
pub(crate) trait EachKept {
    fn batch(&mut self, kept: Box<dyn std::any::Any + Send>);
    fn next(&mut self, accepted: bool);
}

impl Fold<'_, '_> {
    fn error(&mut self, reply: Option<u64>, row: &str, path: String, message: String) {
        self.report.error(ErrorEntry {
            file: self.shown.clone(),
            file_number: self.file as u64 + 1,
            reply,
            row: row.into(),
            path,
            message,
        });
        self.refused.store(true, Ordering::Relaxed);
    }

    /// A person, in file and reply order: a second dossier for one INSZ is an ERROR (M23, the
    /// later one is named); otherwise it is accepted (counted, written or handed on) when its
    /// own mapping had no ERROR (`ok`) and the run has none so far.
    fn accept(&mut self, insz: u64, reply: u32, ok: bool) -> bool {
        if !self.seen.insert(insz) {
            self.error(
                Some(u64::from(reply)),
                "M23",
                "KBIDossier/Personalia/INSZ".into(),
                "a second dossier for the same INSZ (replies must be deduplicated before the import)".into(),
            );
            false
        } else if ok && self.report.errors_total == 0 {
            self.report.persons += 1;
            true
        } else {
            false
        }
    }

    fn batch(&mut self, index: usize, batch: Batch) -> ControlFlow<()> {
        if index != self.file || self.shown.is_empty() {
            self.file = index;
            self.shown = display_path(&self.files.files[index].0);
        }
        self.report.replies += batch.replies;
        self.report.dossiers += batch.dossiers;
        self.report.not_found += batch.not_found;
        if let (Some(kept), Some(each)) = (batch.kept, self.each.as_mut()) {
            each.batch(kept);
        }
        let mut kinds = batch.kinds.iter();
        for item in batch.items {
            match item {
                Item::Error(e) => self.error(e.reply, e.row, e.path, e.message),
                Item::Warn(w) => {
                    self.report.warn_n(w.0, &w.1, 1);
                }
                Item::Person {
                    insz,
                    reply,
                    ok,
                    employment,
                    events,
                } => {
                    let mut person_kinds = kinds.by_ref().take(events as usize);
                    if self.accept(insz, reply, ok) {
                        if employment > 0 {
                            if let Some(es) = self.report.employment_service.as_mut() {
                                es.persons_with_dossier += 1;
                            }
                            self.used += u64::from(employment);
                        }
                        for &k in person_kinds {
                            self.events[usize::from(k)] += 1;
                        }
                    } else {
                        // Keep the types of the persons that follow in step.
                        person_kinds.by_ref().for_each(drop);
                    }
                }
                Item::Kept {
                    insz,
                    reply,
                    events,
                } => {
                    let mut person_kinds = kinds.by_ref().take(events as usize);
                    let accepted = self.accept(insz, reply, true);
                    if accepted {
                        for &k in person_kinds {
                            self.events[usize::from(k)] += 1;
                        }
                    } else {
                        person_kinds.by_ref().for_each(drop);
                    }
                    if let Some(each) = self.each.as_mut() {
                        each.next(accepted);
                    }
                }
                Item::Xml(e) => self.error(e.reply, e.row, e.path, e.message),
                Item::NoReply => self.error(
                    None,
                    "XML",
                    "(file)".into(),
                    "no GeefDossierKBIResponse in this file".into(),
                ),
                Item::Unreadable(error) => {
                    self.stopped = Some(ImportError::Input {
                        path: self.shown.clone(),
                        error,
                    });
                    return ControlFlow::Break(());
                }
                Item::WriteFailed(e) => {
                    self.report.error(ErrorEntry {
                        file: self.out_shown.clone(),
                        file_number: 0,
                        reply: None,
                        row: "IO".into(),
                        path: "(temporary file)".into(),
                        message: format!("cannot write: {e}"),
                    });
                    self.refused.store(true, Ordering::Relaxed);
                }
                Item::End(tally) => self.tally.merge(*tally),
            }
        }
        if batch.segment.len > 0 {
            self.segments.push(batch.segment);
        }
        ControlFlow::Continue(())
    }
}

/// The report before the reading: the listing's counts and its skipped entries (WARN `INPUT`).
fn new_report(listing: &Listing, codes_version: &str, id: &str) -> Report {
    let mut report = Report {
        from: FORMAT_NAME,
        codes_version: codes_version.to_string(),
        snapshot_id: id.to_string(),
        files: listing.files.len() as u64,
        skipped: listing.skipped.clone(),
        ..Report::default()
    };
    for (kind, n) in &listing.skipped {
        let message = match *kind {
            SKIPPED_SYMLINK => "a symbolic link inside an input directory: not followed, skipped",
            SKIPPED_SPECIAL => {
                "a special file (FIFO, socket, device) inside an input directory: skipped"
            }
            _ => "an entry of an input directory that is not a regular file: skipped",
        };
        report.warn_n("INPUT", message, *n);
    }
    report
}

/// What the fold of all files gives: the report (without `facts`, `ok`, `out`, `seconds`), the
/// person lines' segments (import) and the employment-service registrations taken.
struct Folded {
    report: Report,
    segments: Vec<Segment>,
    used: u64,
}

/// Reads the listed files and folds them, in file order: the one reading of both consumers.
#[allow(clippy::too_many_arguments)]
fn fold_files(
    listing: &Listing,
    read_options: &ReadOptions<'_>,
    lines: Option<&Lines<'_>>,
    refused: &AtomicBool,
    report: Report,
    out_shown: String,
    progress: &dyn Progress,
    each: Option<&mut dyn EachKept>,
) -> Result<Folded, ImportError> {
    let bytes = read_options.bytes.clone();
    let mut fold = Fold {
        report,
        files: listing,
        seen: HashSet::new(),
        file: 0,
        shown: String::new(),
        events: [0; 13],
        used: 0,
        segments: Vec::new(),
        tally: Tally::default(),
        out_shown,
        refused,
        stopped: None,
        bytes: &bytes,
        reported: 0,
        each,
    };
    let total: u64 = listing
        .files
        .iter()
        .map(|(f, _)| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    progress.start(
        if read_options.mapper.is_some() {
            "dossiers"
        } else {
            "import"
        },
        total,
    );
    read(&listing.files, read_options, lines, |index, batch| {
        let flow = fold.batch(index, batch);
        let now = fold.bytes.load(Ordering::Relaxed);
        if now - fold.reported >= 1 << 20 {
            progress.advance(now - fold.reported);
            fold.reported = now;
        }
        flow
    });
    let now = bytes.load(Ordering::Relaxed);
    progress.advance(now.saturating_sub(fold.reported));
    progress.finish();
    if let Some(error) = fold.stopped {
        return Err(error);
    }
    let Fold {
        mut report,
        tally,
        events,
        used,
        segments,
        ..
    } = fold;
    report.bytes = now;
    report.ignored = tally.ignored;
    report.unknown_elements = tally.unknown;
    report.events = events
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| (kind_name(k as u8), n))
        .collect::<BTreeMap<_, _>>();
    Ok(Folded {
        report,
        segments,
        used,
    })
}

/// The export's reading ([`crate::read_dossiers_mapped`]): the import's fold in profile mode,
/// each person mapped on its reader worker by `mapper`'s mappings, every accepted one's result
/// handed to `each`; nothing written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_dossiers<'a>(
    options: &'a DossierRead,
    run: &RunOptions,
    listing: &Listing,
    progress: &dyn Progress,
    mapper: &'a MapperFactory<'a>,
    batches_ahead: usize,
    each: &mut dyn EachKept,
    started: Instant,
) -> Result<Report, ImportError> {
    let report = new_report(listing, &options.codes.version, "");
    let refused = AtomicBool::new(false);
    let read_options = ReadOptions {
        codes: &options.codes,
        employment: None,
        limits: run.limits,
        workers: run.workers,
        bytes: Arc::new(AtomicU64::new(0)),
        before_open: run.before_open,
        mapper: Some(mapper),
        batches_ahead,
    };
    let folded = fold_files(
        listing,
        &read_options,
        None,
        &refused,
        report,
        String::new(),
        progress,
        Some(each),
    )?;
    let mut report = folded.report;
    report.facts = dossier_facts().to_vec();
    report.ok = report.errors_total == 0;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads the listed files and folds them; writes the snapshot when no ERROR was met.
pub(crate) fn run(
    options: &ImportOptions,
    run: &RunOptions,
    id: &str,
    listing: &Listing,
    out_dir: &Path,
    progress: &dyn Progress,
    started: Instant,
) -> Result<Report, ImportError> {
    let out_err = |error| ImportError::Output {
        path: display_path(&options.out),
        error,
    };
    let mut report = new_report(listing, &options.codes.version, id);
    let employment = match &options.employment_service {
        Some(path) => Some(read_employment_service(
            path,
            &mut report,
            listing.files.len() as u64 + 1,
        )?),
        None => None,
    };
    let body = tempfile::tempfile_in(out_dir).map_err(out_err)?;
    let lines = Lines {
        file: &body,
        end: AtomicU64::new(0),
        refused: AtomicBool::new(report.errors_total > 0),
    };
    let read_options = ReadOptions {
        codes: &options.codes,
        employment: employment.as_ref(),
        limits: run.limits,
        workers: run.workers,
        bytes: Arc::new(AtomicU64::new(0)),
        before_open: run.before_open,
        mapper: None,
        batches_ahead: crate::read::BATCHES_AHEAD,
    };
    let Folded {
        mut report,
        segments,
        used,
    } = fold_files(
        listing,
        &read_options,
        Some(&lines),
        &lines.refused,
        report,
        display_path(&options.out),
        progress,
        None,
    )?;
    let mut facts: Vec<&'static str> = dossier_facts().to_vec();
    if let Some(es) = report.employment_service.as_mut() {
        let lines: u64 = employment
            .as_ref()
            .map_or(0, |m| m.values().map(|v| v.len() as u64).sum());
        es.lines_without_dossier = lines.saturating_sub(used);
        facts.push("EMPLOYMENT_SERVICE_REGISTRATION");
    }
    report.facts = facts.clone();
    if report.errors_total > 0 {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
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
    let mut body = SegmentsReader {
        file: &body,
        segments: segments.into_iter(),
        current: Segment::default(),
    };
    write_snapshot(&options.out, target.as_file(), header.as_bytes(), &mut body)
        .map_err(out_err)?;
    target.as_file().sync_all().map_err(out_err)?;
    target.persist(&options.out).map_err(|e| out_err(e.error))?;
    report.ok = true;
    report.out = Some(display_path(&options.out));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The person lines in fold order: the segments of the temporary file one after the other.
struct SegmentsReader<'a> {
    file: &'a File,
    segments: std::vec::IntoIter<Segment>,
    current: Segment,
}

impl Read for SegmentsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.len == 0 {
            match self.segments.next() {
                Some(s) => self.current = s,
                None => return Ok(0),
            }
        }
        let want = buf
            .len()
            .min(self.current.len.min(usize::MAX as u64) as usize);
        let n =
            std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.current.offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the temporary file is shorter than written",
            ));
        }
        self.current.offset += n as u64;
        self.current.len -= n as u64;
        Ok(n)
    }
}
