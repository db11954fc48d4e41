//! Join files (`protocols.md` section 4): what a partner returns, joined on the INSZ.
//!
//! A join file is CSV (RFC 4180, UTF-8) with a header row of `insz` and exactly the columns the
//! protocol declares (in any order: they are matched by name), or the same encrypted with age,
//! decrypted in memory with the agency's identity: the plaintext never touches the disk.
//!
//! Hostile input is bounded before the CSV reader sees it: a line longer than [`MAX_LINE`]
//! bytes stops the reading at that line (a 1 GB line is never held whole), cells are UTF-8
//! without control characters and at most [`MAX_CELL`] bytes. An invalid or repeated INSZ is an
//! ERROR naming the line, never the value: the partner may only return whom it was sent.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use kbi_core::domain::Insz;
use kbi_protocol::Join;

use crate::table::Values;

/// Longest cell (`protocols.md` section 3: "≤ 200 bytes").
pub const MAX_CELL: usize = 200;
/// Longest line: the header or a record. With cells of at most 200 bytes a record of even 60
/// columns fits; anything longer is refused as it streams in.
pub const MAX_LINE: usize = 64 * 1024;
/// How many faulty lines an error lists (the count is always given).
pub const MAX_LISTED: usize = 20;

/// The start of every binary age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Why a join file was refused. Names the join, the file and line numbers, never a value.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("--join {name}: the protocol's file declares no join named {name} (it declares: {declared})")]
    Undeclared { name: String, declared: String },
    #[error("--join {name}={path}: {error}")]
    Open {
        name: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "--join {name}={path} is age-encrypted: give the agency's age identity with --identity \
         KEYFILE (it is decrypted in memory)"
    )]
    NeedsIdentity { name: String, path: PathBuf },
    #[error(
        "--join {name}={path} is ASCII-armored age; give the binary form (`age -d -i … | age -e -r …` \
         without -a)"
    )]
    Armored { name: String, path: PathBuf },
    #[error("--join {name}={path}: cannot decrypt: {why}")]
    Decrypt {
        name: String,
        path: PathBuf,
        why: String,
    },
    #[error("--join {name}={path}: header: {why}")]
    Header {
        name: String,
        path: PathBuf,
        why: String,
    },
    #[error(
        "--join {name}={path}: {total} faulty line(s): {}{}; nothing was written",
        listed.iter().map(|(line, why)| format!("line {line}: {why}")).collect::<Vec<_>>().join("; "),
        if *total > listed.len() as u64 { "; …" } else { "" }
    )]
    Lines {
        name: String,
        path: PathBuf,
        /// Line number and what is wrong (never the value).
        listed: Vec<(u64, String)>,
        total: u64,
    },
    #[error("join {name} is named by the protocol (in-join or a column) but no --join {name}=FILE was given")]
    Missing { name: String },
}

/// A loaded join file: each INSZ's row of cells (value indexes in the delivery's [`Values`]),
/// in the protocol's declared column order.
#[derive(Debug, Clone)]
pub struct JoinTable {
    pub name: String,
    pub path: PathBuf,
    /// The declared columns, in the protocol's order.
    pub columns: Vec<String>,
    by_insz: HashMap<u64, u32>,
    /// The file line of each row (1 = the header).
    lines: Vec<u64>,
    cells: Vec<u32>,
}

impl JoinTable {
    /// Rows (the header not counted).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The row of `insz`, if the file has one.
    pub fn row_of(&self, insz: u64) -> Option<usize> {
        self.by_insz.get(&insz).map(|&r| r as usize)
    }

    /// The cell of `row` in declared column `column`.
    pub fn cell(&self, row: usize, column: usize) -> u32 {
        self.cells[row * self.columns.len() + column]
    }

    /// The index of a declared column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The file line of `row`.
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }
}

/// SHA-256 of a join file as given (encrypted or not), for the manifest.
pub fn file_sha256(join: &Join, path: &Path) -> Result<String, JoinError> {
    let open_error = |error: io::Error| JoinError::Open {
        name: join.name.clone(),
        path: path.to_path_buf(),
        error,
    };
    let file = kbi_core::io::open_regular(path).map_err(|e| open_error(e.into()))?;
    kbi_premium::deliver::sha256_hex(file).map_err(open_error)
}

/// Opens a join file: plain CSV, or binary age decrypted with `identities` as it streams.
pub fn open(
    join: &Join,
    path: &Path,
    identities: Option<&[Box<dyn age::Identity>]>,
) -> Result<Box<dyn Read>, JoinError> {
    let open_error = |error: io::Error| JoinError::Open {
        name: join.name.clone(),
        path: path.to_path_buf(),
        error,
    };
    let file = kbi_core::io::open_regular(path).map_err(|e| open_error(e.into()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = io::BufRead::fill_buf(&mut reader).map_err(open_error)?;
    if head.starts_with(AGE_ARMOR) {
        return Err(JoinError::Armored {
            name: join.name.clone(),
            path: path.to_path_buf(),
        });
    }
    if !head.starts_with(AGE_MAGIC) {
        return Ok(Box::new(reader));
    }
    let Some(identities) = identities else {
        return Err(JoinError::NeedsIdentity {
            name: join.name.clone(),
            path: path.to_path_buf(),
        });
    };
    let decrypt_error = |why: String| JoinError::Decrypt {
        name: join.name.clone(),
        path: path.to_path_buf(),
        why,
    };
    let decryptor =
        age::Decryptor::new_buffered(reader).map_err(|e| decrypt_error(e.to_string()))?;
    let plaintext = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| decrypt_error(e.to_string()))?;
    Ok(Box::new(plaintext))
}

/// Reads a join file's CSV from `input` against its declaration; cell texts are interned in
/// `values`.
pub fn load(
    join: &Join,
    path: &Path,
    input: impl Read,
    values: &mut Values,
) -> Result<JoinTable, JoinError> {
    let name = &join.name;
    let bounded = LineBounded::new(input, MAX_LINE);
    let line_seen = bounded.lines.clone();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(bounded);
    let header_error = |why: String| JoinError::Header {
        name: name.clone(),
        path: path.to_path_buf(),
        why,
    };
    let mut faults: Vec<(u64, String)> = Vec::new();
    let mut total_faults = 0u64;
    let mut fault = |line: u64, why: String, faults: &mut Vec<(u64, String)>| {
        total_faults += 1;
        if faults.len() < MAX_LISTED {
            faults.push((line, why));
        }
    };

    let mut record = csv::ByteRecord::new();
    // The header: `insz` and exactly the declared columns, each once, in any order.
    let read = reader
        .read_byte_record(&mut record)
        .map_err(|e| header_error(csv_error(&e, line_seen.get())))?;
    if !read {
        return Err(header_error("the file is empty (no header row)".into()));
    }
    let mut header: Vec<String> = Vec::with_capacity(record.len());
    for (i, cell) in record.iter().enumerate() {
        let text = std::str::from_utf8(cell)
            .map_err(|_| header_error(format!("column {} is not UTF-8", i + 1)))?;
        // A byte-order mark is what spreadsheet programs put before the first name.
        let text = if i == 0 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        header.push(text.trim().to_owned());
    }
    let mut position: Vec<Option<usize>> = Vec::with_capacity(header.len()); // file column → declared
    let mut insz_at = None;
    for (i, h) in header.iter().enumerate() {
        if h == "insz" {
            if insz_at.replace(i).is_some() {
                return Err(header_error("column `insz` is there twice".into()));
            }
            position.push(None);
            continue;
        }
        let Some(declared) = join.columns.iter().position(|c| c == h) else {
            return Err(header_error(format!(
                "column {} is not declared for join {name} (declared: insz, {}); a column the \
                 protocol does not name is never read",
                i + 1,
                join.columns.join(", ")
            )));
        };
        if position.contains(&Some(declared)) {
            return Err(header_error(format!("column `{h}` is there twice")));
        }
        position.push(Some(declared));
    }
    let Some(insz_at) = insz_at else {
        return Err(header_error("no column `insz`".into()));
    };
    let missing: Vec<&str> = join
        .columns
        .iter()
        .enumerate()
        .filter(|(d, _)| !position.contains(&Some(*d)))
        .map(|(_, c)| c.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(header_error(format!(
            "declared column(s) missing: {}",
            missing.join(", ")
        )));
    }

    let width = join.columns.len();
    let mut table = JoinTable {
        name: name.clone(),
        path: path.to_path_buf(),
        columns: join.columns.clone(),
        by_insz: HashMap::new(),
        lines: Vec::new(),
        cells: Vec::new(),
    };
    let mut row = vec![0u32; width];
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // An I/O error (a line over the bound, a broken decryption) ends the reading.
                let line = line_seen.get();
                fault(line, csv_error(&e, line), &mut faults);
                break;
            }
        }
        let line = line_seen.get();
        if record.len() == 1 && record.get(0).is_some_and(|c| c.is_empty()) {
            continue; // a blank line
        }
        if record.len() != header.len() {
            fault(
                line,
                format!("{} cell(s), the header has {}", record.len(), header.len()),
                &mut faults,
            );
            continue;
        }
        let mut bad = None;
        let mut insz = None;
        for (i, cell) in record.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(cell) else {
                bad = Some(format!("column {} is not UTF-8", i + 1));
                break;
            };
            if text.len() > MAX_CELL {
                bad = Some(format!("column {} is longer than {MAX_CELL} bytes", i + 1));
                break;
            }
            if text.chars().any(char::is_control) {
                bad = Some(format!("column {} holds a control character", i + 1));
                break;
            }
            match position[i] {
                None if i == insz_at => match Insz::parse(text.trim()) {
                    Ok(valid) => insz = Some(valid.value()),
                    Err(_) => {
                        bad = Some("invalid INSZ".into());
                        break;
                    }
                },
                None => {}
                Some(declared) => row[declared] = values.intern(text.trim()),
            }
        }
        if let Some(why) = bad {
            fault(line, why, &mut faults);
            continue;
        }
        let Some(insz) = insz else { continue };
        let index = table.lines.len() as u32;
        if let Some(&first) = table.by_insz.get(&insz) {
            let first_line = table.lines[first as usize];
            fault(
                line,
                format!("the same INSZ as line {first_line}"),
                &mut faults,
            );
            continue;
        }
        table.by_insz.insert(insz, index);
        table.lines.push(line);
        table.cells.extend_from_slice(&row);
    }
    if total_faults > 0 {
        return Err(JoinError::Lines {
            name: name.clone(),
            path: path.to_path_buf(),
            listed: faults,
            total: total_faults,
        });
    }
    Ok(table)
}

/// The text of a CSV reading error, without the data (csv's own messages can quote bytes).
fn csv_error(error: &csv::Error, line: u64) -> String {
    match error.kind() {
        csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            // Our own bound, or a decryption failure: their texts hold no data.
            io.to_string()
        }
        csv::ErrorKind::Io(io) => format!("cannot be read: {}", io.kind()),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        csv::ErrorKind::UnequalLengths { .. } => "wrong number of cells".into(),
        _ => format!("not valid CSV (near line {line})"),
    }
}

/// A reader that hands out at most one line per `read` (so the CSV reader, which reads only
/// when its buffer is spent, has read exactly through the line of the record it returns, and
/// the line number is exact: csv's own skips blank lines and lags after CRLF), and refuses with
/// an `InvalidData` error a line longer than `max` bytes as it streams in.
struct LineBounded<R> {
    inner: BufReader<R>,
    max: usize,
    current: usize,
    lines: LineCount,
}

/// The number of the line last handed out (1-based), shared with the caller.
#[derive(Debug, Clone, Default)]
struct LineCount(std::rc::Rc<std::cell::Cell<(u64, bool)>>);

impl LineCount {
    /// The line of the bytes last handed out.
    fn get(&self) -> u64 {
        let (newlines, ended) = self.0.get();
        // After a newline the line handed out is the one it ended.
        if ended {
            newlines
        } else {
            newlines + 1
        }
    }
}

impl<R: Read> LineBounded<R> {
    fn new(inner: R, max: usize) -> Self {
        LineBounded {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max,
            current: 0,
            lines: LineCount::default(),
        }
    }
}

impl<R: Read> Read for LineBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.current > self.max {
            return Err(self.too_long());
        }
        let available = io::BufRead::fill_buf(&mut self.inner)?;
        let take = available.len().min(buf.len());
        let (n, ended) = match available[..take].iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (take, false),
        };
        buf[..n].copy_from_slice(&available[..n]);
        io::BufRead::consume(&mut self.inner, n);
        let (newlines, _) = self.lines.0.get();
        if ended {
            self.current = 0;
            self.lines.0.set((newlines + 1, true));
        } else {
            self.current += n;
            self.lines.0.set((newlines, false));
            if self.current > self.max {
                return Err(self.too_long());
            }
        }
        Ok(n)
    }
}

impl<R> LineBounded<R> {
    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a line longer than {} bytes (refused unread)", self.max),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "85073003328";
    const B: &str = "93051822361";
    fn join(columns: &[&str]) -> Join {
        Join {
            name: "vdab".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            returned_from: None,
        }
    }

    fn load_text(columns: &[&str], text: &[u8]) -> Result<(JoinTable, Values), JoinError> {
        let mut values = Values::default();
        let table = load(&join(columns), Path::new("x.csv"), text, &mut values)?;
        Ok((table, values))
    }

    #[test]
    fn rows_are_read_by_insz_in_declared_column_order() {
        let text = format!("outflow,insz,category\r\nja,{A},B2\r\n\r\nnee,{B},\r\n");
        let (table, values) = load_text(&["category", "outflow"], text.as_bytes()).unwrap();
        assert_eq!(table.len(), 2);
        let a = table.row_of(Insz::parse(A).unwrap().value()).unwrap();
        assert_eq!(values.text(table.cell(a, 0)), "B2");
        assert_eq!(values.text(table.cell(a, 1)), "ja");
        let b = table.row_of(Insz::parse(B).unwrap().value()).unwrap();
        assert_eq!(values.text(table.cell(b, 0)), "");
        assert_eq!(table.line(a), 2);
        assert_eq!(table.line(b), 4, "blank lines and CRLF counted");
    }

    #[test]
    fn quoted_cells_follow_rfc_4180() {
        let text = format!("insz,note\n\"{A}\",\"a, \"\"b\"\"\"\n");
        let (table, values) = load_text(&["note"], text.as_bytes()).unwrap();
        assert_eq!(values.text(table.cell(0, 0)), "a, \"b\"");
    }

    fn faulty(columns: &[&str], text: &[u8]) -> String {
        let error = load_text(columns, text).unwrap_err();
        let shown = error.to_string();
        for insz in [A, B, "85073003329"] {
            assert!(!shown.contains(insz), "an INSZ in {shown}");
        }
        shown
    }

    #[test]
    fn invalid_and_duplicate_insz_name_the_line_only() {
        let text = format!("insz,x\n{A},1\n85073003329,2\n{A},3\n");
        let shown = faulty(&["x"], text.as_bytes());
        assert!(shown.contains("line 3: invalid INSZ"), "{shown}");
        assert!(shown.contains("line 4: the same INSZ as line 2"), "{shown}");
        assert!(shown.contains("2 faulty line(s)"), "{shown}");
    }

    #[test]
    fn the_header_must_be_insz_and_exactly_the_declared_columns() {
        let shown = faulty(&["x"], format!("insz,x,y\n{A},1,2\n").as_bytes());
        assert!(shown.contains("column 3 is not declared"), "{shown}");
        let shown = faulty(&["x", "y"], format!("insz,x\n{A},1\n").as_bytes());
        assert!(shown.contains("missing: y"), "{shown}");
        let shown = faulty(&["x"], b"x\n1\n");
        assert!(shown.contains("no column `insz`"), "{shown}");
        let shown = faulty(&["x"], b"");
        assert!(shown.contains("empty"), "{shown}");
        // A byte-order mark before the header is not part of the first name.
        let text = format!("\u{feff}insz,x\n{A},1\n");
        assert_eq!(load_text(&["x"], text.as_bytes()).unwrap().0.len(), 1);
    }

    #[test]
    fn bad_utf8_control_characters_and_long_cells_are_refused_by_line() {
        let mut text = format!("insz,x\n{A},ok\n{B},").into_bytes();
        text.extend_from_slice(b"\xff\xfe\n");
        let shown = faulty(&["x"], &text);
        assert!(shown.contains("line 3: column 2 is not UTF-8"), "{shown}");
        let shown = faulty(&["x"], format!("insz,x\n{A},a\tb\n").as_bytes());
        assert!(
            shown.contains("line 2: column 2 holds a control character"),
            "{shown}"
        );
        let long = "y".repeat(MAX_CELL + 1);
        let shown = faulty(&["x"], format!("insz,x\n{A},{long}\n").as_bytes());
        assert!(shown.contains("longer than 200 bytes"), "{shown}");
        let shown = faulty(&["x"], format!("insz,x\n{A},1,2\n").as_bytes());
        assert!(shown.contains("line 2: 3 cell(s)"), "{shown}");
    }

    /// A source of `len` bytes of `x` without a newline, never held in memory.
    struct Endless {
        left: u64,
        read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (buf.len() as u64).min(self.left) as usize;
            buf[..n].fill(b'x');
            self.left -= n as u64;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_gigabyte_line_is_refused_without_reading_it() {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let head = format!("insz,x\n{A},");
        let source = head.as_bytes().chain(Endless {
            left: 1 << 30,
            read: read.clone(),
        });
        let mut values = Values::default();
        let error = load(&join(&["x"]), Path::new("x.csv"), source, &mut values).unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("line 2: a line longer than"), "{shown}");
        assert!(
            read.get() < 4 * MAX_LINE as u64,
            "read {} bytes",
            read.get()
        );
    }

    #[test]
    fn age_encrypted_files_are_decrypted_in_memory_with_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        let plain = format!("insz,x\n{A},1\n");
        let encrypted = {
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(&identity.to_public() as _))
                    .unwrap();
            let mut out = Vec::new();
            let mut writer = encryptor.wrap_output(&mut out).unwrap();
            std::io::Write::write_all(&mut writer, plain.as_bytes()).unwrap();
            writer.finish().unwrap();
            out
        };
        let path = dir.path().join("returned.csv.age");
        std::fs::write(&path, &encrypted).unwrap();
        let spec = join(&["x"]);
        let error = open(&spec, &path, None).err().unwrap();
        assert!(matches!(error, JoinError::NeedsIdentity { .. }), "{error}");
        let identities: Vec<Box<dyn age::Identity>> = vec![Box::new(identity)];
        let input = open(&spec, &path, Some(&identities)).unwrap();
        let mut values = Values::default();
        let table = load(&spec, &path, input, &mut values).unwrap();
        assert_eq!(table.len(), 1);
        let other: Vec<Box<dyn age::Identity>> = vec![Box::new(age::x25519::Identity::generate())];
        assert!(matches!(
            open(&spec, &path, Some(&other)).err().unwrap(),
            JoinError::Decrypt { .. }
        ));
    }
}
