//! The in-order fold of the import: what [`crate::read`] gives, file by file and reply by reply,
//! becomes the report, and, when no ERROR was met, the snapshot.
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
use crate::read::{kind_name, read, Batch, Item, Lines, ReadOptions, Segment};
use crate::report::{display_path, ErrorEntry, Report};
use crate::xml::Tally;
use crate::{ImportError, ImportOptions, RunOptions, FORMAT_NAME};

/// The state of the fold.
struct Fold<'a> {
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
}

impl Fold<'_> {
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

    fn batch(&mut self, index: usize, batch: Batch) -> ControlFlow<()> {
        if index != self.file || self.shown.is_empty() {
            self.file = index;
            self.shown = display_path(&self.files.files[index].0);
        }
        self.report.replies += batch.replies;
        self.report.dossiers += batch.dossiers;
        self.report.not_found += batch.not_found;
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
                    let person_kinds = kinds.by_ref().take(events as usize);
                    if !self.seen.insert(insz) {
                        self.error(
                            Some(u64::from(reply)),
                            "M23",
                            "KBIDossier/Personalia/INSZ".into(),
                            "a second dossier for the same INSZ (replies must be deduplicated before the import)".into(),
                        );
                    } else if ok && self.report.errors_total == 0 {
                        self.report.persons += 1;
                        if employment > 0 {
                            if let Some(es) = self.report.employment_service.as_mut() {
                                es.persons_with_dossier += 1;
                            }
                            self.used += u64::from(employment);
                        }
                        for &k in person_kinds {
                            self.events[usize::from(k)] += 1;
                        }
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
    let mut report = Report {
        from: FORMAT_NAME,
        codes_version: options.codes.version.clone(),
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
    let bytes = Arc::new(AtomicU64::new(0));
    let read_options = ReadOptions {
        codes: &options.codes,
        employment: employment.as_ref(),
        limits: run.limits,
        workers: run.workers,
        bytes: bytes.clone(),
        before_open: run.before_open,
    };
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
        out_shown: display_path(&options.out),
        refused: &lines.refused,
        stopped: None,
        bytes: &bytes,
        reported: 0,
    };
    let total: u64 = listing
        .files
        .iter()
        .map(|(f, _)| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    progress.start("import", total);
    read(
        &listing.files,
        &read_options,
        Some(&lines),
        |index, batch| {
            let flow = fold.batch(index, batch);
            let now = fold.bytes.load(Ordering::Relaxed);
            if now - fold.reported >= 1 << 20 {
                progress.advance(now - fold.reported);
                fold.reported = now;
            }
            flow
        },
    );
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
