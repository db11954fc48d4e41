//! The reader: input files parsed and mapped in parallel, handed over in file order.
//!
//! Each worker thread takes the next file, reads its replies ([`crate::xml`]), judges and maps
//! each one ([`crate::mapping::reply::judge_reply`]) and sends what they gave as small
//! [`Batch`]es down that file's own bounded channel. The caller's `fold` receives the batches of
//! file 1, then of file 2, …, on the calling thread: the order of a single-threaded reading,
//! whatever the number of workers, so whatever depends on order (which of two dossiers of one
//! INSZ is the second, which WARN messages are listed, which ERRORs come first) is decided in
//! one place.
//!
//! What stays in memory is bounded: a batch holds at most [`BATCH_REPLIES`] replies as compact
//! [`Item`]s (a person is its INSZ, flags and event types: the mapped events themselves are
//! written out as the person's snapshot line), a file's channel holds at most
//! [`BATCHES_AHEAD`] batches, and a worker starts a file only while it is at most
//! `workers + 1` files ahead of the fold. The person lines of the dossiers that mapped without
//! an ERROR go to one temporary file, written by the workers at offsets they reserve (one
//! [`Segment`] per batch); the fold only keeps the segments' order.
//!
//! The export (`kbi-export`, issue 22) uses the same reader in profile mode
//! ([`ReadOptions::profile`]): no line is written (`lines: None`), and a person whose own
//! mapping had no ERROR is handed, on the worker that read it, to the export's per-worker
//! mapping ([`MapKept`]); only what it gives (a compact row) goes down the channel, so the
//! dossier is dropped on the thread that allocated it. The batch carries the persons as
//! [`Item::Kept`] (INSZ, reply, event count) for the same fold to decide whether each is
//! accepted ([`crate::read_dossiers_mapped`]).

use std::any::Any;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

use chrono::NaiveDate;
use kbi_core::domain::event::{Event, EventKind, EVENT_TYPES};
use kbi_core::domain::Insz;

use crate::codes::Codes;
use crate::dossier::Dossier;
use crate::input::{open_input, FileLimits};
use crate::line::write_person_line;
use crate::mapping::reply::{judge_reply, Step};
use crate::xml::{ReplyReader, Tally};

/// Replies per batch: small enough that a batch is a few tens of KiB, large enough that the
/// channel is not the cost.
pub const BATCH_REPLIES: usize = 512;
/// Batches one file may have waiting for the fold (about 130,000 replies): a worker reading a
/// file ahead of the fold keeps going until then, so files are read in parallel.
pub const BATCHES_AHEAD: usize = 256;
/// Most worker threads.
pub const MAX_WORKERS: usize = 8;
/// Batches one file may have waiting in profile mode when the mapping keeps the whole dossier
/// ([`crate::read_dossiers`]; about 8,000 replies): a waiting person holds a kilobyte or so,
/// not 24 bytes.
pub const PROFILE_BATCHES_AHEAD: usize = 16;
/// Batches one file may have waiting in profile mode when the mapping gives a compact result
/// ([`crate::read_dossiers_mapped`], an export's row of a hundred bytes or so): as many as an
/// import, so a worker reading the next file is not stopped after a few thousand replies while
/// the fold is still on the previous one (which left one core idle most of the time).
pub const MAPPED_BATCHES_AHEAD: usize = BATCHES_AHEAD;

/// One accepted dossier for an export ([`crate::read_dossiers`]).
#[derive(Debug, Clone)]
pub struct KeptPerson {
    pub insz: Insz,
    /// The events, sorted by date, as the import's line for this person (no
    /// employment-service registrations: an export reads the dossiers alone).
    pub events: Vec<Event>,
    /// The dossier as read in profile mode (`profile` is `Some`).
    pub dossier: Box<Dossier>,
}

/// Profile mode: what a reader worker does with each person it kept, on its own thread, in
/// the file's order (one per file read; [`ReadOptions::mapper`] makes them). The fold hands
/// the results on in the same order ([`crate::fold`]), those of accepted persons only.
pub trait MapKept: Send {
    /// Maps one person and keeps the result for the current batch.
    fn map(&mut self, person: KeptPerson);
    /// The results kept since the last call, in order (the batch's `kept`).
    fn take(&mut self) -> Box<dyn Any + Send>;
}

/// Makes one [`MapKept`] for each file a worker reads.
pub type MapperFactory<'a> = dyn Fn() -> Box<dyn MapKept + 'a> + Sync + 'a;

/// The snapshot name of the event type with this index ([`EventKind::same_day_rank`]).
pub fn kind_name(index: u8) -> &'static str {
    EVENT_TYPES[usize::from(index)]
}

impl Batch {
    fn new() -> Self {
        Batch {
            // About three items per reply at most in the usual case, six event types.
            items: Vec::with_capacity(BATCH_REPLIES + BATCH_REPLIES / 8),
            kinds: Vec::with_capacity(6 * BATCH_REPLIES),
            ..Batch::default()
        }
    }
}

/// One thing a file gave, in the file's order.
#[derive(Debug)]
pub enum Item {
    /// An ERROR of the mapping (§2, M1–M22).
    Error(Box<ItemError>),
    Warn(Box<(&'static str, String)>),
    /// The person of a dossier just read: its INSZ value, the reply it is in, whether its own
    /// mapping had no ERROR (then its line is in the batch's segment), how many
    /// employment-service registrations its line took, and how many event types follow in
    /// [`Batch::kinds`]. (24 bytes: a batch waiting for the fold is small.)
    Person {
        insz: u64,
        reply: u32,
        ok: bool,
        employment: u32,
        events: u32,
    },
    /// Profile mode: the person of a dossier whose own mapping had no ERROR, mapped on the
    /// worker ([`MapKept`]; the result is the next one of [`Batch::kept`]), with its INSZ
    /// value, reply number and how many event types follow in [`Batch::kinds`]. A person with
    /// an ERROR comes as [`Item::Person`] with `ok: false`, as in an import.
    Kept {
        insz: u64,
        reply: u32,
        events: u32,
    },
    /// The XML of the file was refused (the reading of the file stopped there).
    Xml(Box<ItemError>),
    /// The file holds no reply at all.
    NoReply,
    /// The file could not be opened (the run stops).
    Unreadable(io::Error),
    /// A person line could not be written to the temporary file.
    WriteFailed(io::Error),
    /// The file is read to its end (or to its XML error): the elements it skipped.
    End(Box<Tally>),
}

/// An ERROR's reply number in the file, row, path and message.
#[derive(Debug)]
pub struct ItemError {
    pub reply: Option<u64>,
    pub row: &'static str,
    pub path: String,
    pub message: String,
}

/// Where a batch's person lines are in the temporary file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
}

/// Up to [`BATCH_REPLIES`] replies of one file. The counts need no order (they are totals);
/// what does is in `items`.
#[derive(Debug, Default)]
pub struct Batch {
    pub replies: u64,
    pub dossiers: u64,
    /// Replies or answers not in the register (FOUT 30001).
    pub not_found: u64,
    pub items: Vec<Item>,
    /// The event types of the persons, in order ([`kind_name`]).
    pub kinds: Vec<u8>,
    pub segment: Segment,
    /// Profile mode: the mapped persons of the batch's [`Item::Kept`], in order
    /// ([`MapKept::take`]).
    pub kept: Option<Box<dyn Any + Send>>,
}

/// Where the person lines go.
pub struct Lines<'a> {
    pub file: &'a File,
    /// The next free offset (reserved by `fetch_add`).
    pub end: AtomicU64,
    /// Set by the fold once the run is refused: lines are no longer written.
    pub refused: AtomicBool,
}

/// What the reader needs.
pub struct ReadOptions<'a> {
    pub codes: &'a Codes,
    /// The employment services' registrations, merged into the lines of the persons they name.
    pub employment: Option<&'a HashMap<u64, Vec<NaiveDate>>>,
    pub limits: FileLimits,
    pub workers: usize,
    /// Bytes read from disk so far (progress, report).
    pub bytes: Arc<AtomicU64>,
    /// Called before a file is opened (tests: to swap it for a FIFO).
    pub before_open: Option<fn(&Path)>,
    /// Profile mode (an export) when given: the reader also reads the profile
    /// ([`crate::xml::ReplyReader::with_profile`]), persons come as [`Item::Kept`], and this
    /// makes the per-worker mapping of the kept persons. `None`: an import.
    pub mapper: Option<&'a MapperFactory<'a>>,
    /// Batches one file may have waiting for the fold ([`BATCHES_AHEAD`] in an import).
    pub batches_ahead: usize,
}

fn lock(m: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Files handed out to workers, and how far the fold is.
struct Window {
    next: usize,
    folded: usize,
    cancelled: bool,
}

/// Reads `files` (each with whether a link is followed) and calls `fold` with every batch of
/// file 0, then file 1, …; `fold` returns `Break` to stop the reading.
pub fn read(
    files: &[(PathBuf, bool)],
    options: &ReadOptions<'_>,
    lines: Option<&Lines<'_>>,
    mut fold: impl FnMut(usize, Batch) -> ControlFlow<()>,
) {
    let workers = options
        .workers
        .clamp(1, MAX_WORKERS)
        .min(files.len().max(1));
    // A worker that finished its file may start one more while the fold is behind: enough to
    // keep the workers busy when files are about the same size, and it bounds what waits.
    let ahead = workers + 1;
    let window = Mutex::new(Window {
        next: 0,
        folded: 0,
        cancelled: false,
    });
    let moved = Condvar::new();
    let mut receivers: Vec<Option<Receiver<Batch>>> = Vec::with_capacity(files.len());
    let mut senders: Vec<Mutex<Option<SyncSender<Batch>>>> = Vec::with_capacity(files.len());
    for _ in files {
        let (tx, rx) = sync_channel(options.batches_ahead.max(1));
        senders.push(Mutex::new(Some(tx)));
        receivers.push(Some(rx));
    }
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (window, moved, senders) = (&window, &moved, &senders);
            scope.spawn(move || loop {
                let index = {
                    let mut w = lock(window);
                    while !w.cancelled && w.next < files.len() && w.next >= w.folded + ahead {
                        w = moved.wait(w).unwrap_or_else(|e| e.into_inner());
                    }
                    if w.cancelled || w.next >= files.len() {
                        break;
                    }
                    w.next += 1;
                    w.next - 1
                };
                let Some(tx) = senders[index]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                else {
                    continue;
                };
                let (path, follow) = &files[index];
                read_file(path, *follow, options, lines, &tx);
            });
        }
        let mut stopped = false;
        for (index, slot) in receivers.iter_mut().enumerate() {
            let Some(rx) = slot.take() else { continue };
            // Ends when the worker drops the file's sender, after its last batch.
            while let Ok(batch) = rx.recv() {
                if fold(index, batch).is_break() {
                    stopped = true;
                    break;
                }
            }
            drop(rx);
            if stopped {
                break;
            }
            lock(&window).folded = index + 1;
            moved.notify_all();
        }
        if stopped {
            // Workers blocked on a full channel see it closed; idle ones see `cancelled`.
            lock(&window).cancelled = true;
            receivers.clear();
            moved.notify_all();
        }
    });
}

/// Collects one file's batches and sends them.
struct Sink<'a, 'b, 'm> {
    tx: &'a SyncSender<Batch>,
    lines: Option<&'a Lines<'b>>,
    mapper: Option<Box<dyn MapKept + 'm>>,
    batch: Batch,
    buf: Vec<u8>,
    replies: usize,
    closed: bool,
}

impl Sink<'_, '_, '_> {
    fn push(&mut self, item: Item) {
        self.batch.items.push(item);
    }

    fn flush(&mut self) {
        if let Some(lines) = self.lines {
            if !self.buf.is_empty() {
                let len = self.buf.len() as u64;
                let offset = lines.end.fetch_add(len, Ordering::Relaxed);
                match write_at(lines.file, &self.buf, offset) {
                    Ok(()) => self.batch.segment = Segment { offset, len },
                    Err(e) => self.batch.items.push(Item::WriteFailed(e)),
                }
                self.buf.clear();
            }
        }
        if let Some(mapper) = self.mapper.as_mut() {
            self.batch.kept = Some(mapper.take());
        }
        let batch = std::mem::replace(&mut self.batch, Batch::new());
        self.replies = 0;
        if !self.closed && self.tx.send(batch).is_err() {
            // The fold stopped: read no further.
            self.closed = true;
        }
    }
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Reads one file to its end (or its XML error) into batches.
fn read_file<'m>(
    path: &Path,
    follow: bool,
    options: &ReadOptions<'m>,
    lines: Option<&Lines<'_>>,
    tx: &SyncSender<Batch>,
) {
    let mut sink = Sink {
        tx,
        lines,
        mapper: options.mapper.map(|make| make()),
        batch: Batch::new(),
        buf: Vec::new(),
        replies: 0,
        closed: false,
    };
    if let Some(hook) = options.before_open {
        hook(path);
    }
    let stream = match open_input(path, follow, options.bytes.clone(), options.limits) {
        Ok(s) => s,
        Err(e) => {
            sink.push(Item::Unreadable(e));
            sink.flush();
            return;
        }
    };
    let mut reader = if options.mapper.is_some() {
        ReplyReader::with_profile(stream)
    } else {
        ReplyReader::new(stream)
    };
    let mut xml_failed = false;
    loop {
        match reader.next_reply() {
            Ok(Some(reply)) => {
                sink.batch.replies += 1;
                let number = reader.replies;
                judge_reply(reply, options.codes, &mut |step| {
                    let item = match step {
                        Step::Error { row, path, message } => Item::Error(Box::new(ItemError {
                            reply: Some(number),
                            row,
                            path,
                            message,
                        })),
                        Step::Warn { row, message } => Item::Warn(Box::new((row, message))),
                        Step::NotFound => {
                            sink.batch.not_found += 1;
                            return;
                        }
                        Step::Dossier => {
                            sink.batch.dossiers += 1;
                            return;
                        }
                        Step::Person(p) => {
                            let mut events = p.events;
                            let mut employment = 0u32;
                            if let Some(dates) =
                                options.employment.and_then(|m| m.get(&p.insz.value()))
                            {
                                employment = dates.len() as u32;
                                events.extend(dates.iter().map(|&date| Event {
                                    date,
                                    kind: EventKind::EmploymentServiceRegistration,
                                }));
                                events.sort_by_key(|e| e.date);
                            }
                            let reply = u32::try_from(number).unwrap_or(u32::MAX);
                            sink.batch
                                .kinds
                                .extend(events.iter().map(|e| e.kind.same_day_rank()));
                            if let (Some(dossier), Some(mapper)) = (p.dossier, sink.mapper.as_mut())
                            {
                                let item = Item::Kept {
                                    insz: p.insz.value(),
                                    reply,
                                    events: events.len() as u32,
                                };
                                // Here, on the worker: the dossier is dropped where it was
                                // built, and the mapping runs in parallel.
                                mapper.map(KeptPerson {
                                    insz: p.insz,
                                    events,
                                    dossier,
                                });
                                sink.batch.items.push(item);
                                return;
                            }
                            let refused = sink
                                .lines
                                .is_some_and(|l| l.refused.load(Ordering::Relaxed));
                            if p.ok && sink.lines.is_some() && !refused {
                                write_person_line(&mut sink.buf, p.insz, &events);
                            }
                            Item::Person {
                                insz: p.insz.value(),
                                reply,
                                ok: p.ok,
                                employment,
                                events: events.len() as u32,
                            }
                        }
                    };
                    sink.batch.items.push(item);
                });
                sink.replies += 1;
                if sink.replies >= BATCH_REPLIES {
                    sink.flush();
                    if sink.closed {
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(located) => {
                sink.push(Item::Xml(Box::new(ItemError {
                    reply: (reader.replies > 0).then_some(reader.replies),
                    row: "XML",
                    path: located.path.clone(),
                    message: format!("{} (near byte {})", located.error, located.offset),
                })));
                xml_failed = true;
                break;
            }
        }
    }
    if reader.replies == 0 && !xml_failed {
        sink.push(Item::NoReply);
    }
    sink.push(Item::End(Box::new(std::mem::take(&mut reader.tally))));
    sink.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_item_is_small() {
        assert!(std::mem::size_of::<Item>() <= 24);
    }
}
