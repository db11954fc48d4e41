//! The plaintext of the list: CSV with the header `insz`, then one 11-digit INSZ a line, ascending,
//! no duplicates, every line ended by `\n`. Written and checked as a stream, hashing as it goes,
//! so the plaintext exists only in memory, a buffer at a time.

use std::io::{self, BufRead, Write};

use sha2::{Digest, Sha256};

use kbi_core::domain::Insz;

/// The first line of the plaintext.
pub const HEADER: &[u8] = b"insz\n";
/// Bytes of one INSZ line.
const LINE: usize = 12;
/// Plaintext is handed to the encryptor in pieces of this size: one age chunk (64 KiB).
const BUFFER: usize = 64 * 1024;

/// What a written or checked plaintext amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    pub count: u64,
    /// SHA-256 of the whole plaintext, hex.
    pub sha256: String,
}

/// Writes the plaintext into `inner` (the age encryptor), hashing it on the way.
pub struct ListWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    hasher: Sha256,
    count: u64,
    last: Option<u64>,
}

impl<W: Write> ListWriter<W> {
    /// Starts the list with its header.
    pub fn new(inner: W) -> Self {
        let mut buffer = Vec::with_capacity(BUFFER + LINE);
        buffer.extend_from_slice(HEADER);
        ListWriter {
            inner,
            buffer,
            hasher: Sha256::new(),
            count: 0,
            last: None,
        }
    }

    /// Appends one INSZ; refuses one that is not above the previous (the index is sorted and
    /// duplicate-free, so this only guards against a future bug).
    pub fn push(&mut self, insz: Insz) -> io::Result<()> {
        if self.last.is_some_and(|last| insz.value() <= last) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "premium list: INSZ out of order (internal error)",
            ));
        }
        self.last = Some(insz.value());
        self.buffer.extend_from_slice(&insz.digits());
        self.buffer.push(b'\n');
        self.count += 1;
        if self.buffer.len() >= BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        self.hasher.update(&self.buffer);
        self.inner.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    /// Hands over the rest and returns the inner writer (still to be finished) and the summary.
    pub fn finish(mut self) -> io::Result<(W, ListSummary)> {
        self.drain()?;
        let summary = ListSummary {
            count: self.count,
            sha256: hex::encode(self.hasher.finalize()),
        };
        Ok((self.inner, summary))
    }
}

/// Why a plaintext is not a valid list. Names the line, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("the plaintext does not start with the header line `insz`")]
    Header,
    #[error("plaintext line {line} is not 11 digits ended by a newline")]
    Shape { line: u64 },
    #[error("plaintext line {line} is not a valid INSZ ({why})")]
    Invalid {
        line: u64,
        why: kbi_core::domain::InszError,
    },
    #[error(
        "plaintext line {line} is not above the line before it (not ascending, or a duplicate)"
    )]
    Order { line: u64 },
    #[error("the plaintext could not be read: {0}")]
    Read(#[from] io::Error),
}

/// Reads a plaintext to its end, checking every rule of the format; returns the count and hash.
pub fn check<R: BufRead>(mut input: R) -> Result<ListSummary, ListError> {
    let mut hasher = Sha256::new();
    let mut line = Vec::with_capacity(64);
    input.read_until(b'\n', &mut line)?;
    if line != HEADER {
        return Err(ListError::Header);
    }
    hasher.update(&line);
    let mut count = 0u64;
    let mut last: Option<u64> = None;
    let mut number = 1u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        hasher.update(&line);
        let shaped = line.len() == LINE
            && line[LINE - 1] == b'\n'
            && line[..LINE - 1].iter().all(u8::is_ascii_digit);
        if !shaped {
            return Err(ListError::Shape { line: number });
        }
        let value = line[..LINE - 1]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        let insz =
            Insz::from_digits(value).map_err(|why| ListError::Invalid { line: number, why })?;
        if last.is_some_and(|l| insz.value() <= l) {
            return Err(ListError::Order { line: number });
        }
        last = Some(insz.value());
        count += 1;
    }
    Ok(ListSummary {
        count,
        sha256: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insz(s: &str) -> Insz {
        Insz::parse(s).unwrap()
    }

    #[test]
    fn written_list_checks_and_hashes_the_same() {
        let mut w = ListWriter::new(Vec::new());
        w.push(insz("80010110005")).unwrap();
        w.push(insz("85073003328")).unwrap();
        assert!(w.push(insz("85073003328")).is_err());
        let (bytes, summary) = w.finish().unwrap();
        assert_eq!(bytes, b"insz\n80010110005\n85073003328\n");
        assert_eq!(summary.count, 2);
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(check(&bytes[..]).unwrap(), summary);
    }

    #[test]
    fn empty_list_is_the_header_alone() {
        let (bytes, summary) = ListWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(bytes, HEADER);
        assert_eq!(summary.count, 0);
        assert_eq!(check(&bytes[..]).unwrap(), summary);
    }

    #[test]
    fn every_rule_of_the_format_is_checked() {
        let bad: [(&[u8], &str); 6] = [
            (b"INSZ\n80010110005\n", "header"),
            (b"insz\n8001011000\n", "line 2"),
            (b"insz\n80010110005", "line 2"),
            (b"insz\n80010110005\r\n", "line 2"),
            (b"insz\n80010110006\n", "line 2 is not a valid INSZ"),
            (b"insz\n85073003328\n80010110005\n", "line 3"),
        ];
        for (text, expected) in bad {
            let error = check(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("8001011"), "no INSZ in errors: {error}");
        }
        let dup = check(&b"insz\n80010110005\n80010110005\n"[..]).unwrap_err();
        assert!(matches!(dup, ListError::Order { line: 3 }));
    }
}
