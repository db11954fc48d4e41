//! Streaming, all-or-nothing snapshot loading.
//!
//! A reader thread cuts the (decompressed) text into chunks of whole lines; the chunks are
//! decoded, validated and compiled in parallel and appended to the index in file order, so the
//! first error reported is the first in the file. The text is never held in memory as a whole.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Deserialize;

use super::person::{compile_person, parse_person};
use crate::domain::compiled::answer_time;
use crate::domain::index::{DuplicateInsz, PersonIndexBuilder};
use crate::domain::timeline::Transition;
use crate::domain::{CompiledSnapshot, Facts, Insz, RuleSet, SnapshotMeta};
use crate::io::{OpenError, Progress};

/// The only snapshot format this program reads.
pub const FORMAT: u64 = 1;

/// Why a snapshot was refused. Messages name the line and never contain an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    // The I/O error is part of the message rather than a `source`, so that error chains do not
    // print it twice.
    #[error("cannot open snapshot {path}: {error}")]
    Open { path: String, error: io::Error },
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("line {line}: cannot read the snapshot (corrupt or truncated file?): {error}")]
    Read { line: u64, error: io::Error },
    /// A FIFO, device, socket or directory: reading it could block forever or never end.
    #[error("{path} is a {kind}, not a regular file: refused without reading it")]
    NotRegular { path: String, kind: &'static str },
    #[error(
        "line {line}: longer than the maximum of {max} bytes per line (snapshot.max_line_bytes): \
         not a snapshot, or a corrupt one"
    )]
    LineTooLong { line: u64, max: usize },
    #[error(
        "line {line}: the text exceeds the maximum of {max} decompressed bytes \
         (snapshot.max_decompressed_bytes)"
    )]
    TooMuchText { line: u64, max: u64 },
    #[error(
        "line {line}: the source sent nothing for {seconds} s (snapshot.read_stall_timeout_seconds): \
         load abandoned"
    )]
    Stalled { line: u64, seconds: f64 },
}

impl SnapshotError {
    fn line(line: u64, message: impl Into<String>) -> Self {
        SnapshotError::Line {
            line,
            message: message.into(),
        }
    }

    /// A second line for one INSZ, named by both line numbers (the header is line 1, so person
    /// `n` counted from 0 stands on line `n + 2`); never the number itself.
    fn duplicate(d: DuplicateInsz) -> Self {
        SnapshotError::line(
            d.second as u64 + 2,
            format!(
                "duplicate INSZ: the same number as on line {}",
                d.first as u64 + 2
            ),
        )
    }
}

#[derive(Deserialize)]
struct HeaderLine {
    kbi_snapshot: HeaderBody,
}

#[derive(Deserialize)]
struct HeaderBody {
    format: serde_json::Value,
    snapshot_id: String,
    extracted_at: String,
    persons: u64,
    #[serde(default)]
    facts: Option<Vec<String>>,
    #[serde(default)]
    sources: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

/// Upper bound for the informative `sources` of the header, as compact JSON.
const MAX_SOURCES_BYTES: usize = 16 * 1024;

/// Upper bound for the header's person count: every INSZ of Belgium several times over. A
/// larger count is a corrupt header, and must not size our allocations.
const MAX_PERSONS: u64 = 100_000_000;

/// The most persons the index is pre-sized for from the header's count: all of Belgium's 12 M
/// fit; a larger (or false) count grows the index as lines actually arrive.
const PRESIZE_MAX_PERSONS: u64 = 16_000_000;

/// Parses and checks line 1.
pub(crate) fn parse_header(line: &[u8]) -> Result<SnapshotMeta, SnapshotError> {
    let bad = |m: String| SnapshotError::line(1, m);
    let header: HeaderLine = serde_json::from_slice(line).map_err(|e| {
        bad(format!(
            "not a valid snapshot header: {}",
            crate::redact::json::<HeaderLine>(line, &e)
        ))
    })?;
    let h = header.kbi_snapshot;
    if h.format.as_u64() != Some(FORMAT) {
        // The value itself is not repeated: messages never quote the file.
        return Err(bad(format!(
            "`format` is not supported (this program reads format {FORMAT})"
        )));
    }
    let id = h.snapshot_id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(bad(
            "`snapshot_id` must be 1 to 128 characters without control characters".into(),
        ));
    }
    let extracted_at = DateTime::parse_from_rfc3339(&h.extracted_at)
        .map_err(|_| bad("`extracted_at` is not an RFC 3339 timestamp".into()))?
        .with_timezone(&Utc);
    if h.persons > MAX_PERSONS {
        return Err(bad(format!(
            "`persons` exceeds the maximum of {MAX_PERSONS}"
        )));
    }
    let facts = match &h.facts {
        None => Facts::ALL,
        Some(names) => {
            Facts::from_names(names.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?
        }
    };
    let sources = match &h.sources {
        None => None,
        Some(sources) => {
            let text = serde_json::to_string(sources).unwrap_or_default();
            if text.len() > MAX_SOURCES_BYTES {
                return Err(bad(format!(
                    "`sources` is longer than {MAX_SOURCES_BYTES} bytes"
                )));
            }
            Some(text)
        }
    };
    Ok(SnapshotMeta {
        snapshot_id: id.to_string(),
        extracted_at,
        persons: h.persons,
        facts,
        sources,
    })
}

/// Compression, recognised by magic bytes (the extension must agree when it names one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Opens a snapshot file, decompressing as its magic bytes say.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, SnapshotError> {
    let open_err = |error| SnapshotError::Open {
        path: path.display().to_string(),
        error,
    };
    let file = crate::io::open_regular(path).map_err(|error| match error {
        OpenError::Io(error) => open_err(error),
        OpenError::NotRegular { kind } => SnapshotError::NotRegular {
            path: path.display().to_string(),
            kind,
        },
    })?;
    let mut reader = BufReader::with_capacity(1 << 18, file);
    let head = reader.fill_buf().map_err(open_err)?;
    let compression = if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let name = path.to_string_lossy();
    let expected = if name.ends_with(".gz") {
        Some(Compression::Gzip)
    } else if name.ends_with(".zst") {
        Some(Compression::Zstd)
    } else {
        None
    };
    if let Some(expected) = expected {
        if expected != compression {
            return Err(SnapshotError::line(
                1,
                format!("file name says {expected:?} but the content is not (bad or truncated compressed file)"),
            ));
        }
    }
    decompress(reader, compression).map_err(open_err)
}

/// Wraps `reader` in the decoder for `compression`.
pub fn decompress<R: BufRead + Send + 'static>(
    reader: R,
    compression: Compression,
) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 18,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 18,
            zstd::stream::read::Decoder::with_buffer(reader)?,
        )),
    })
}

/// Loads the snapshot at `path` under the default [`ReadLimits`].
pub fn load_path(
    path: &Path,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    load(open(path)?, rules, progress, ReadLimits::default())
}

/// A run of whole person lines.
struct Chunk {
    /// Line number of the first line in `text`.
    first_line: u64,
    text: Vec<u8>,
}

/// Bounds on what one snapshot load may read, so that a hostile or broken source (a file with no
/// line ends, a compression bomb, a source that stops sending) is refused in bounded time and
/// memory. The service passes them from `[snapshot]` in its settings to [`load`]; the command line
/// tools, tests and [`load_path`]/[`load_bytes`] use the defaults, which are also the shipped
/// defaults of `config/default.toml`. An argument, not a process-wide setting: two services (or
/// two tests) in one process may read under different limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Longest line accepted, in bytes (header included).
    pub max_line_bytes: usize,
    /// Most (decompressed) text bytes one load may read.
    pub max_text_bytes: u64,
    /// Longest wait for the source to deliver more data (a stalled network file system, a
    /// Redis server that stops answering).
    pub stall_timeout: std::time::Duration,
}

/// 1 MiB per line: the longest line of the demonstration snapshot has 618 bytes, so this leaves
/// room for a person with more than ten thousand events.
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// 8 GiB of text: 12 M persons at about 700 bytes each, six times the average line of the
/// generated mix (115 bytes), and about a minute of reading at the measured load speed.
pub(crate) const DEFAULT_MAX_TEXT_BYTES: u64 = 8 << 30;
/// A minute without a single byte from the source.
pub(crate) const DEFAULT_STALL_TIMEOUT_SECONDS: u64 = 60;

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            stall_timeout: std::time::Duration::from_secs(DEFAULT_STALL_TIMEOUT_SECONDS),
        }
    }
}

/// How reading one line ended.
enum LineRead {
    /// A line (with its `\n`, unless it is the last line of the text) was appended.
    Line(usize),
    /// The text has ended.
    End,
    /// The line has more than the allowed number of bytes; nothing more is read.
    TooLong,
}

/// `read_until(b'\n')` that stops at `max` bytes: a file of zeros without a line end must not be
/// buffered whole.
fn read_line_capped(
    reader: &mut dyn BufRead,
    out: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let mut read = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if read == 0 {
                LineRead::End
            } else {
                LineRead::Line(read)
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if read + take > max + usize::from(done) {
            return Ok(LineRead::TooLong);
        }
        out.extend_from_slice(&available[..take]);
        reader.consume(take);
        read += take;
        if done {
            return Ok(LineRead::Line(read));
        }
    }
}

/// Why the reading thread stopped early.
enum ReadFailure {
    Io(io::Error),
    TooLong,
    TooMuchText,
}

enum ReadItem {
    Header(Vec<u8>),
    Chunk(Chunk),
    Failed { line: u64, failure: ReadFailure },
}

impl ReadFailure {
    fn into_error(self, line: u64, limits: &ReadLimits) -> SnapshotError {
        match self {
            ReadFailure::Io(error) => SnapshotError::Read { line, error },
            ReadFailure::TooLong => SnapshotError::LineTooLong {
                line,
                max: limits.max_line_bytes,
            },
            ReadFailure::TooMuchText => SnapshotError::TooMuchText {
                line,
                max: limits.max_text_bytes,
            },
        }
    }
}

/// The compiled content of one chunk.
struct ChunkOutput {
    persons: Vec<(Insz, u32)>,
    transitions: Vec<Transition>,
}

const CHUNK_BYTES: usize = 1 << 20;

/// Reads the header, then every person line, and compiles the index; all or nothing.
///
/// The text is read on a thread of its own, so that a source which stops sending is noticed
/// here ([`ReadLimits::stall_timeout`]) instead of blocking the load forever; that thread is
/// then left to end by itself when its read returns.
pub fn load(
    reader: Box<dyn BufRead + Send>,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
    limits: ReadLimits,
) -> Result<CompiledSnapshot, SnapshotError> {
    let (sender, receiver) = sync_channel::<ReadItem>(8);
    let reading = std::thread::Builder::new()
        .name("snapshot-read".into())
        .spawn(move || read_chunks(reader, sender, limits))
        .map_err(|error| SnapshotError::Read { line: 1, error })?;
    let outcome = load_from(&receiver, rules, progress, &limits);
    if !matches!(outcome, Err(SnapshotError::Stalled { .. })) {
        // The reader stops at its next send once the receiver is gone; joining it makes sure
        // it has dropped the source (whose `Drop` may report, e.g. a digest).
        drop(receiver);
        let _ = reading.join();
    }
    outcome
}

fn receive(
    receiver: &Receiver<ReadItem>,
    line: u64,
    limits: &ReadLimits,
) -> Result<Option<ReadItem>, SnapshotError> {
    match receiver.recv_timeout(limits.stall_timeout) {
        Ok(item) => Ok(Some(item)),
        Err(RecvTimeoutError::Disconnected) => Ok(None),
        Err(RecvTimeoutError::Timeout) => Err(SnapshotError::Stalled {
            line,
            seconds: limits.stall_timeout.as_secs_f64(),
        }),
    }
}

fn load_from(
    receiver: &Receiver<ReadItem>,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
    limits: &ReadLimits,
) -> Result<CompiledSnapshot, SnapshotError> {
    let header = match receive(receiver, 1, limits)? {
        Some(ReadItem::Header(header)) => header,
        Some(ReadItem::Failed { line, failure }) => return Err(failure.into_error(line, limits)),
        Some(ReadItem::Chunk(_)) | None => {
            return Err(SnapshotError::line(
                1,
                "the file is empty: a snapshot header is required",
            ))
        }
    };
    let meta = parse_header(trim_line(&header))?;
    let declared = meta.persons;
    progress.start("loading snapshot", declared);

    // The index is compiled under the rules as they judge this source: no missed deadline is
    // derived for an act the source does not record. Answers still echo `rules.version`.
    let judge = Judge {
        rules: rules.judged_with(meta.facts),
        facts: meta.facts,
    };
    // Pre-sized from the header (no regrowth peak for a real register), but only up to a bound:
    // a 100-byte file declaring 100 M persons must not reserve gigabytes.
    let presize = declared.min(PRESIZE_MAX_PERSONS) as usize;
    let mut builder = PersonIndexBuilder::with_capacity(presize, presize);
    let persons = compile_chunks(receiver, &judge, &mut builder, declared, progress, limits)?;
    if persons != declared {
        return Err(SnapshotError::line(
            persons + 2,
            format!(
                "the file ends after {persons} person lines but the header declares {declared}: \
                 truncated or corrupt"
            ),
        ));
    }
    let index = builder.finish().map_err(SnapshotError::duplicate)?;
    progress.finish();
    Ok(CompiledSnapshot {
        extracted_at_text: answer_time(&meta.extracted_at),
        meta,
        rules,
        index,
    })
}

fn read_chunks(
    mut reader: Box<dyn BufRead + Send>,
    sender: std::sync::mpsc::SyncSender<ReadItem>,
    limits: ReadLimits,
) {
    let fail = |line, failure| {
        let _ = sender.send(ReadItem::Failed { line, failure });
    };
    let mut total = 0u64;
    let mut header = Vec::new();
    match read_line_capped(&mut reader, &mut header, limits.max_line_bytes) {
        Ok(LineRead::Line(n)) => total += n as u64,
        Ok(LineRead::End) => return, // empty: the receiver reports it
        Ok(LineRead::TooLong) => return fail(1, ReadFailure::TooLong),
        Err(error) => return fail(1, ReadFailure::Io(error)),
    }
    if sender.send(ReadItem::Header(header)).is_err() {
        return;
    }
    let mut line = 2u64;
    loop {
        let mut text = Vec::with_capacity(CHUNK_BYTES + 4096);
        let first_line = line;
        while text.len() < CHUNK_BYTES {
            match read_line_capped(&mut reader, &mut text, limits.max_line_bytes) {
                Ok(LineRead::End) => break,
                Ok(LineRead::Line(n)) => {
                    total += n as u64;
                    if total > limits.max_text_bytes {
                        return fail(line, ReadFailure::TooMuchText);
                    }
                    line += 1;
                }
                Ok(LineRead::TooLong) => return fail(line, ReadFailure::TooLong),
                Err(error) => return fail(line, ReadFailure::Io(error)),
            }
        }
        if text.is_empty() {
            return;
        }
        if sender
            .send(ReadItem::Chunk(Chunk { first_line, text }))
            .is_err()
        {
            return; // the consumer stopped at an error
        }
    }
}

/// How person lines are checked and compiled for one snapshot.
struct Judge {
    /// The rule set restricted to what the source records ([`RuleSet::judged_with`]).
    rules: RuleSet,
    /// The header's `facts`: an event of another type refuses the file.
    facts: Facts,
}

fn compile_chunks(
    receiver: &Receiver<ReadItem>,
    judge: &Judge,
    builder: &mut PersonIndexBuilder,
    declared: u64,
    progress: &dyn Progress,
    limits: &ReadLimits,
) -> Result<u64, SnapshotError> {
    let batch_size = rayon::current_num_threads().max(1) * 2;
    let mut persons = 0u64;
    let mut done = false;
    while !done {
        let mut batch = Vec::with_capacity(batch_size);
        while batch.len() < batch_size {
            match receive(receiver, persons + 2, limits)? {
                Some(ReadItem::Chunk(chunk)) => batch.push(chunk),
                Some(ReadItem::Failed { line, failure }) => {
                    // Compile what was read first: an earlier line's error is the better report.
                    let outputs: Vec<_> =
                        batch.par_iter().map(|c| compile_chunk(c, judge)).collect();
                    for output in outputs {
                        output?;
                    }
                    return Err(failure.into_error(line, limits));
                }
                Some(ReadItem::Header(_)) | None => {
                    done = true;
                    break;
                }
            }
        }
        let outputs: Vec<_> = batch.par_iter().map(|c| compile_chunk(c, judge)).collect();
        for (chunk, output) in batch.iter().zip(outputs) {
            let output = output?;
            let mut from = 0usize;
            for (offset, (insz, end)) in output.persons.iter().enumerate() {
                persons += 1;
                if persons > declared {
                    return Err(SnapshotError::line(
                        chunk.first_line + offset as u64,
                        format!("more person lines than the {declared} the header declares"),
                    ));
                }
                let end = *end as usize;
                builder
                    .push(*insz, &output.transitions[from..end])
                    .map_err(SnapshotError::duplicate)?;
                from = end;
            }
            progress.advance(output.persons.len() as u64);
        }
    }
    Ok(persons)
}

/// Strips the line ending (`\n` or `\r\n`).
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn compile_chunk(chunk: &Chunk, judge: &Judge) -> Result<ChunkOutput, SnapshotError> {
    let mut output = ChunkOutput {
        persons: Vec::with_capacity(chunk.text.len() / 64),
        transitions: Vec::new(),
    };
    for (i, raw) in chunk.text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_no = chunk.first_line + i as u64;
        let line = trim_line(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(SnapshotError::line(
                line_no,
                "empty line where a person record was expected",
            ));
        }
        let person = parse_person(line).map_err(|m| SnapshotError::line(line_no, m))?;
        if let Some((i, event)) =
            (person.events.iter().enumerate()).find(|(_, e)| !judge.facts.records(e.kind))
        {
            return Err(SnapshotError::line(
                line_no,
                format!(
                    "event {}: type {} is not among the header's `facts` (the source does not \
                     record it)",
                    i + 1,
                    event.kind.type_name()
                ),
            ));
        }
        compile_person(person.events, &judge.rules, &mut output.transitions);
        output
            .persons
            .push((person.insz, output.transitions.len() as u32));
    }
    Ok(output)
}

/// Reads a whole snapshot from memory under the default [`ReadLimits`] (tests, tools).
pub fn load_bytes(
    bytes: Vec<u8>,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    let cursor = io::Cursor::new(bytes);
    load(Box::new(cursor), rules, progress, ReadLimits::default())
}

/// Convenience for callers holding any reader.
pub fn load_read<R: Read + Send + 'static>(
    reader: R,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    load(
        Box::new(BufReader::new(reader)),
        rules,
        progress,
        ReadLimits::default(),
    )
}

/// Finds one person's line in a snapshot file by a streaming scan (for `--explain`: the index
/// keeps only the compiled timeline, not the events).
pub fn find_person(
    path: &Path,
    insz: Insz,
) -> Result<Option<super::person::Person>, SnapshotError> {
    find_person_in(open(path)?, insz)
}

/// [`find_person`] over any snapshot text (a version stored in Redis).
pub fn find_person_in(
    mut reader: Box<dyn BufRead + Send>,
    insz: Insz,
) -> Result<Option<super::person::Person>, SnapshotError> {
    let wanted = insz.to_string();
    let mut line = Vec::new();
    let mut number = 0u64;
    // `check --explain` only (a command line tool): the default limits.
    let limits = ReadLimits::default();
    let mut total = 0u64;
    loop {
        line.clear();
        let read =
            read_line_capped(&mut reader, &mut line, limits.max_line_bytes).map_err(|error| {
                SnapshotError::Read {
                    line: number + 1,
                    error,
                }
            })?;
        let read = match read {
            LineRead::End => return Ok(None),
            LineRead::TooLong => {
                return Err(SnapshotError::LineTooLong {
                    line: number + 1,
                    max: limits.max_line_bytes,
                })
            }
            LineRead::Line(n) => n as u64,
        };
        total += read;
        if total > limits.max_text_bytes {
            return Err(SnapshotError::TooMuchText {
                line: number + 1,
                max: limits.max_text_bytes,
            });
        }
        number += 1;
        if number == 1 || !line.windows(11).any(|w| w == wanted.as_bytes()) {
            continue;
        }
        let person = parse_person(trim_line(&line)).map_err(|m| SnapshotError::line(number, m))?;
        if person.insz == insz {
            return Ok(Some(person));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Silent;
    use std::time::{Duration, Instant};

    /// A source that sends its header, then nothing for a long time (a hung network file
    /// system).
    struct Stalls {
        header: io::Cursor<Vec<u8>>,
        stall: Duration,
    }

    impl Read for Stalls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.header.read(buf)?;
            if n == 0 {
                std::thread::sleep(self.stall);
            }
            Ok(n)
        }
    }

    #[test]
    fn a_source_that_stops_sending_is_given_up_after_the_stall_timeout() {
        let header = br#"{"kbi_snapshot": {"format": 1, "snapshot_id": "t", "extracted_at": "2026-11-01T02:00:00Z", "persons": 1}}
"#;
        let source = Stalls {
            header: io::Cursor::new(header.to_vec()),
            stall: Duration::from_secs(30),
        };
        let limits = ReadLimits {
            stall_timeout: Duration::from_millis(300),
            ..ReadLimits::default()
        };
        let started = Instant::now();
        let error = load(
            Box::new(BufReader::new(source)),
            Arc::new(RuleSet::shipped()),
            &Silent,
            limits,
        )
        .unwrap_err();
        assert!(matches!(error, SnapshotError::Stalled { .. }), "{error}");
        // A bound, not a speed target: without the timeout this waits the full 30 s.
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        assert!(
            error.to_string().contains("read_stall_timeout_seconds"),
            "{error}"
        );
    }

    /// The service's shipped settings (the binary embeds the same file as `DEFAULT_TOML`), read
    /// from the file so that this floor does not reach up into the service.
    const SHIPPED_SETTINGS: &str = include_str!("../../../../config/default.toml");

    #[test]
    fn the_default_limits_are_the_shipped_settings() {
        let settings: toml::Table = toml::from_str(SHIPPED_SETTINGS).unwrap();
        let snapshot = &settings["snapshot"];
        let defaults = ReadLimits::default();
        assert_eq!(
            snapshot["max_line_bytes"].as_integer(),
            Some(defaults.max_line_bytes as i64)
        );
        assert_eq!(
            snapshot["max_decompressed_bytes"].as_integer(),
            Some(defaults.max_text_bytes as i64)
        );
        assert_eq!(
            snapshot["read_stall_timeout_seconds"].as_integer(),
            Some(defaults.stall_timeout.as_secs() as i64)
        );
    }

    #[test]
    fn a_line_over_the_cap_is_refused_without_reading_on() {
        let mut text = b"{\"kbi_snapshot\": 1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5000));
        let limits = ReadLimits {
            max_line_bytes: 1000,
            ..ReadLimits::default()
        };
        let error = load(
            Box::new(io::Cursor::new(text)),
            Arc::new(RuleSet::shipped()),
            &Silent,
            limits,
        )
        .unwrap_err();
        // The header is refused first only if it is read: here line 1 is short and invalid.
        assert!(error.to_string().contains("line 1"), "{error}");
        let long_header = vec![b'{'; 5000];
        let error = load(
            Box::new(io::Cursor::new(long_header)),
            Arc::new(RuleSet::shipped()),
            &Silent,
            limits,
        )
        .unwrap_err();
        assert!(
            matches!(error, SnapshotError::LineTooLong { line: 1, max: 1000 }),
            "{error}"
        );
    }
}
