//! Streaming, all-or-nothing snapshot loading.
//!
//! A reader thread cuts the (decompressed) text into chunks of whole lines; the chunks are
//! decoded, validated and compiled in parallel and appended to the index in file order, so the
//! first error reported is the first in the file. The text is never held in memory as a whole.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Deserialize;

use super::person::{compile_person, parse_person};
use super::progress::Progress;
use crate::domain::index::PersonIndexBuilder;
use crate::domain::timeline::Transition;
use crate::domain::{CompiledSnapshot, Facts, Insz, RuleSet, SnapshotMeta};

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
}

impl SnapshotError {
    fn line(line: u64, message: impl Into<String>) -> Self {
        SnapshotError::Line {
            line,
            message: message.into(),
        }
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

/// Parses and checks line 1.
pub fn parse_header(line: &[u8]) -> Result<SnapshotMeta, SnapshotError> {
    let bad = |m: String| SnapshotError::line(1, m);
    let header: HeaderLine = serde_json::from_slice(line)
        .map_err(|e| bad(format!("not a valid snapshot header: {e}")))?;
    let h = header.kbi_snapshot;
    if h.format.as_u64() != Some(FORMAT) {
        return Err(bad(format!(
            "snapshot format {} is not supported (this program reads format {FORMAT})",
            h.format
        )));
    }
    let id = h.snapshot_id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(bad(
            "`snapshot_id` must be 1 to 128 characters without control characters".into(),
        ));
    }
    let extracted_at = DateTime::parse_from_rfc3339(&h.extracted_at)
        .map_err(|e| bad(format!("`extracted_at` is not an RFC 3339 timestamp: {e}")))?
        .with_timezone(&Utc);
    if h.persons > MAX_PERSONS {
        return Err(bad(format!(
            "`persons` = {} exceeds the maximum of {MAX_PERSONS}",
            h.persons
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
    let file = std::fs::File::open(path).map_err(open_err)?;
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

/// Loads the snapshot at `path`.
pub fn load_path(
    path: &Path,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    load(open(path)?, rules, progress)
}

/// A run of whole person lines.
struct Chunk {
    /// Line number of the first line in `text`.
    first_line: u64,
    text: Vec<u8>,
}

enum ReadItem {
    Chunk(Chunk),
    Failed { line: u64, error: io::Error },
}

/// The compiled content of one chunk.
struct ChunkOutput {
    persons: Vec<(Insz, u32)>,
    transitions: Vec<Transition>,
}

const CHUNK_BYTES: usize = 1 << 20;

/// Reads the header, then every person line, and compiles the index; all or nothing.
pub fn load(
    mut reader: Box<dyn BufRead + Send>,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .map_err(|error| SnapshotError::Read { line: 1, error })?;
    if header.is_empty() {
        return Err(SnapshotError::line(
            1,
            "the file is empty: a snapshot header is required",
        ));
    }
    let meta = parse_header(trim_line(&header))?;
    let declared = meta.persons;
    progress.start("loading snapshot", declared);

    // The index is compiled under the rules as they judge this source: no missed deadline is
    // derived for an act the source does not record. Answers still echo `rules.version`.
    let judge = Judge {
        rules: rules.judged_with(meta.facts),
        facts: meta.facts,
    };
    let (sender, receiver) = sync_channel::<ReadItem>(8);
    let mut builder = PersonIndexBuilder::with_capacity(declared as usize, declared as usize);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(move || read_chunks(reader, sender));
        compile_chunks(receiver, &judge, &mut builder, declared, progress)
    });
    let persons = outcome?;
    if persons != declared {
        return Err(SnapshotError::line(
            persons + 2,
            format!(
                "the file ends after {persons} person lines but the header declares {declared}: \
                 truncated or corrupt"
            ),
        ));
    }
    let index = builder.finish().map_err(|d| {
        SnapshotError::line(
            d.second as u64 + 2,
            format!(
                "duplicate INSZ: the same number as on line {}",
                d.first as u64 + 2
            ),
        )
    })?;
    progress.finish();
    Ok(CompiledSnapshot { meta, rules, index })
}

fn read_chunks(mut reader: Box<dyn BufRead + Send>, sender: std::sync::mpsc::SyncSender<ReadItem>) {
    let mut line = 2u64;
    loop {
        let mut text = Vec::with_capacity(CHUNK_BYTES + 4096);
        let first_line = line;
        while text.len() < CHUNK_BYTES {
            match reader.read_until(b'\n', &mut text) {
                Ok(0) => break,
                Ok(_) => line += 1,
                Err(error) => {
                    let _ = sender.send(ReadItem::Failed { line, error });
                    return;
                }
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
    receiver: Receiver<ReadItem>,
    judge: &Judge,
    builder: &mut PersonIndexBuilder,
    declared: u64,
    progress: &dyn Progress,
) -> Result<u64, SnapshotError> {
    let batch_size = rayon::current_num_threads().max(1) * 2;
    let mut persons = 0u64;
    let mut done = false;
    while !done {
        let mut batch = Vec::with_capacity(batch_size);
        while batch.len() < batch_size {
            match receiver.recv() {
                Ok(ReadItem::Chunk(chunk)) => batch.push(chunk),
                Ok(ReadItem::Failed { line, error }) => {
                    // Compile what was read first: an earlier line's error is the better report.
                    let outputs: Vec<_> =
                        batch.par_iter().map(|c| compile_chunk(c, judge)).collect();
                    for output in outputs {
                        output?;
                    }
                    return Err(SnapshotError::Read { line, error });
                }
                Err(_) => {
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
                    .map_err(|d| {
                        SnapshotError::line(
                            d.second as u64 + 2,
                            format!(
                                "duplicate INSZ: the same number as on line {}",
                                d.first as u64 + 2
                            ),
                        )
                    })?;
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

/// Reads a whole snapshot from memory (tests, Redis).
pub fn load_bytes(
    bytes: Vec<u8>,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    let cursor = io::Cursor::new(bytes);
    load(Box::new(cursor), rules, progress)
}

/// Convenience for callers holding any reader.
pub fn load_read<R: Read + Send + 'static>(
    reader: R,
    rules: Arc<RuleSet>,
    progress: &dyn Progress,
) -> Result<CompiledSnapshot, SnapshotError> {
    load(Box::new(BufReader::new(reader)), rules, progress)
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
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|error| SnapshotError::Read {
                line: number + 1,
                error,
            })?;
        if read == 0 {
            return Ok(None);
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
