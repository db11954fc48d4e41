//! `snapshot import --from kbi-dossier-01.00`: GeefDossierKBI 01.00 replies → one snapshot
//! (`../shared/spec/kbi-import.md`).
//!
//! One engine, two steps:
//! - [`read`]: the files parsed ([`xml`]) and mapped ([`mapping`], one reply at a time: §2, M22
//!   in [`mapping::reply`], M1–M21 in [`mapping`]) by worker threads into small batches, handed
//!   over in file order;
//! - `fold`: one in-order fold on the calling thread applies what needs the whole run (a second
//!   dossier for one INSZ, the employment-service list, the report) and writes the snapshot.
//!
//! Around them: [`input`] (listing, opening, the bounds on a file), [`employment`] (the
//! employment services' CSV), [`report`], [`line`] (the snapshot lines), [`codes`] (the
//! reviewed code lists), [`dossier`] (the parsed dossier) and [`generate`] (synthetic replies).
//!
//! All or nothing: the person lines go to one anonymous temporary file in the output's
//! directory; only when every file was read without an ERROR is the snapshot (header with the
//! final person count, then the lines) written to a temporary file there and renamed into place.
//! Memory stays flat in the number of dossiers apart from the set of INSZ seen (8 bytes each)
//! and the employment-service list when one is given (`docs/kbi-import.md`, "Bounds").

pub mod codes;
pub mod dossier;
pub mod employment;
mod fold;
pub mod generate;
#[cfg(test)]
mod golden_tests;
pub mod input;
pub mod line;
pub mod mapping;
#[cfg(test)]
mod profile_tests;
pub mod read;
#[cfg(test)]
mod read_dossiers_tests;
pub mod report;
pub mod xml;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};

use codes::Codes;
pub use input::FileLimits;
use kbi_core::io::Progress;
pub(crate) use line::{header_line, write_person_line};
pub use read::KeptPerson;
pub use report::{EmploymentReport, ErrorEntry, Report, RowWarnings};

/// The `--from` value.
pub const FORMAT_NAME: &str = "kbi-dossier-01.00";

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

/// How to run an import: threads and bounds (what the data is, is [`ImportOptions`]).
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Worker threads reading files (at most [`read::MAX_WORKERS`]); the result is the same
    /// for any number.
    pub workers: usize,
    /// Bounds on each input file (decompressed size, ratio).
    pub limits: FileLimits,
    /// Called with each input file's path just before it is opened; tests use it to swap the
    /// file for a FIFO between the listing and the opening.
    #[doc(hidden)]
    pub before_open: Option<fn(&Path)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: default_workers(),
            limits: FileLimits::default(),
            before_open: None,
        }
    }
}

/// What an export reads ([`read_dossiers`]): the same inputs as an import, and the code lists
/// the mapping judges them by.
#[derive(Debug, Clone)]
pub struct DossierRead {
    pub inputs: Vec<PathBuf>,
    pub codes: Codes,
}

/// Reads the dossiers for an export: the import's listing, hardened reader (in profile mode,
/// [`xml::ReplyReader::with_profile`]), mapping and fold, so the same refusals and the same
/// [`Report`] as [`import_with`] of these inputs (ERRORs of §2, M1–M23, 99996, another service,
/// a second dossier for one INSZ, XML errors, a file without a reply, skipped links; no
/// employment-service list). Nothing is written.
///
/// `each` gets, in file and reply order, every dossier with a valid INSZ, no ERROR in its own
/// mapping, that is not a second dossier for its INSZ, for as long as the run has no ERROR:
/// its events (as the import's line) and its dossier with the profile. The report's `ok` is
/// `errors_total == 0`; when it is not, the caller must write nothing (what `each` got before
/// the first ERROR is not a population).
pub fn read_dossiers(
    read: &DossierRead,
    run: &RunOptions,
    progress: &dyn Progress,
    each: &mut dyn FnMut(KeptPerson),
) -> Result<Report, ImportError> {
    read_mapped(
        read,
        run,
        progress,
        &|| |person: KeptPerson| person,
        read::PROFILE_BATCHES_AHEAD,
        each,
    )
}

/// [`read_dossiers`] with each person mapped on the reader's worker thread that read it: every
/// worker calls `mapper` once per file it reads, and the mapping it gets maps that file's kept
/// persons in order. So the dossier is dropped on the thread that built it and the mappings
/// run in parallel; only the `T`s cross to the calling thread, where `each` gets those of the
/// accepted persons (the same persons, in the same order, as [`read_dossiers`]). Whatever
/// needs the whole run (order, duplicates, totals) belongs in `each`, not in the mapping. A
/// `T` should be compact (a row, not the dossier): each file may have
/// [`read::MAPPED_BATCHES_AHEAD`] batches of them waiting for the fold.
pub fn read_dossiers_mapped<T, M>(
    read: &DossierRead,
    run: &RunOptions,
    progress: &dyn Progress,
    mapper: &(dyn Fn() -> M + Sync),
    each: &mut dyn FnMut(T),
) -> Result<Report, ImportError>
where
    T: Send + 'static,
    M: FnMut(KeptPerson) -> T + Send,
{
    read_mapped(
        read,
        run,
        progress,
        mapper,
        read::MAPPED_BATCHES_AHEAD,
        each,
    )
}

/// The profile-mode reading with `batches_ahead` batches waiting per file at most.
fn read_mapped<T, M>(
    read: &DossierRead,
    run: &RunOptions,
    progress: &dyn Progress,
    mapper: &(dyn Fn() -> M + Sync),
    batches_ahead: usize,
    each: &mut dyn FnMut(T),
) -> Result<Report, ImportError>
where
    T: Send + 'static,
    M: FnMut(KeptPerson) -> T + Send,
{
    let started = Instant::now();
    let listing = input::input_files(&read.inputs)?;
    let factory = || -> Box<dyn read::MapKept + '_> {
        Box::new(Mapped {
            map: mapper(),
            out: Vec::new(),
        })
    };
    let mut handed = Handed {
        each,
        current: Vec::new().into_iter(),
    };
    fold::read_dossiers(
        read,
        run,
        &listing,
        progress,
        &factory,
        batches_ahead,
        &mut handed,
        started,
    )
}

/// A worker's mapping and the results of its current batch.
struct Mapped<M, T> {
    map: M,
    out: Vec<T>,
}

impl<M, T> read::MapKept for Mapped<M, T>
where
    T: Send + 'static,
    M: FnMut(KeptPerson) -> T + Send,
{
    fn map(&mut self, person: KeptPerson) {
        self.out.push((self.map)(person));
    }

    fn take(&mut self) -> Box<dyn std::any::Any + Send> {
        let capacity = self.out.len();
        Box::new(std::mem::replace(
            &mut self.out,
            Vec::with_capacity(capacity),
        ))
    }
}

/// The fold's consumer: the current batch's results, handed on or dropped one by one.
struct Handed<'e, T> {
    each: &'e mut dyn FnMut(T),
    current: std::vec::IntoIter<T>,
}

impl<T: 'static> fold::EachKept for Handed<'_, T> {
    fn batch(&mut self, kept: Box<dyn std::any::Any + Send>) {
        // Only `Mapped<_, T>` makes these batches: the type is the one asked for.
        if let Ok(kept) = kept.downcast::<Vec<T>>() {
            self.current = kept.into_iter();
        }
    }

    fn next(&mut self, accepted: bool) {
        if let Some(value) = self.current.next() {
            if accepted {
                (self.each)(value);
            }
        }
    }
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

/// Imports; the report says whether a snapshot was written (`ok`). `Err` only when the run
/// could not start or write at all, or an input file could not be opened.
///
/// Files are read by [`default_workers`] threads; the snapshot and the report are those of a
/// single-threaded reading whatever their number (see [`read`]).
pub fn import(options: &ImportOptions, progress: &dyn Progress) -> Result<Report, ImportError> {
    import_with_workers(options, progress, default_workers())
}

/// The number of cores, at most 4: the reading is CPU-bound and the fold (one thread) is the
/// limit beyond that.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

/// [`import`] with a given number of worker threads (at most [`read::MAX_WORKERS`]).
pub fn import_with_workers(
    options: &ImportOptions,
    progress: &dyn Progress,
    workers: usize,
) -> Result<Report, ImportError> {
    let run = RunOptions {
        workers,
        ..RunOptions::default()
    };
    import_with(options, progress, &run)
}

/// [`import`] with the threads and bounds of `run`.
pub fn import_with(
    options: &ImportOptions,
    progress: &dyn Progress,
    run: &RunOptions,
) -> Result<Report, ImportError> {
    let started = Instant::now();
    let id = options.snapshot_id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ImportError::SnapshotId);
    }
    let listing = input::input_files(&options.inputs)?;
    let out_dir = match options.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fold::run(options, run, id, &listing, &out_dir, progress, started)
}
