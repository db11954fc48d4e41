//! The input files: listing (files as given, directories walked), opening (the descriptor is
//! checked, never the path), and the bounds on what one file may decompress to (issue 24, items
//! 1 and 2).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kbi_core::snapshot::reader::{decompress, Compression};

use crate::report::display_path;
use crate::ImportError;

/// Bounds on one input file (`docs/kbi-import.md`, "Bounds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Most bytes one file may decompress to (or hold, uncompressed).
    pub max_decompressed_bytes: u64,
    /// Most decompressed bytes per compressed byte read, past [`RATIO_SLACK`].
    pub max_ratio: u64,
}

/// Decompressed bytes a compressed file may always reach, whatever its ratio (a small file of
/// repetitive XML compresses far better than a large one).
pub const RATIO_SLACK: u64 = 64 << 20;

impl Default for FileLimits {
    /// 4 GiB: a whole extract of one million dossiers is about 1.7 GB of XML, so even one file
    /// holding all of them passes with room; a ratio of 1000: real replies compress 10–30× with
    /// zstd or gzip, a bomb thousands of times.
    fn default() -> Self {
        FileLimits {
            max_decompressed_bytes: 4 << 30,
            max_ratio: 1000,
        }
    }
}

/// The input files found, and the directory entries not read.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Each file, and whether it was given by name (a symbolic link given by name is followed;
    /// one found in a directory is not).
    pub files: Vec<(PathBuf, bool)>,
    pub skipped: BTreeMap<&'static str, u64>,
}

pub(crate) const SKIPPED_SYMLINK: &str = "symbolic links";
pub(crate) const SKIPPED_SPECIAL: &str = "special files (FIFO, socket, device)";

/// Lists the input files: files as given, directories recursively (`*.xml`, `*.xml.gz`,
/// `*.xml.zst`), in name order. Symbolic links and special files inside directories are skipped
/// and counted; what a listed name is when it is opened is checked again ([`open_regular`]).
pub(crate) fn input_files(inputs: &[PathBuf]) -> Result<Listing, ImportError> {
    fn walk(dir: &Path, out: &mut Listing) -> Result<(), ImportError> {
        let err = |error| ImportError::Input {
            path: display_path(dir),
            error,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(|error| ImportError::Input {
                path: display_path(&path),
                error,
            })?;
            let kind = meta.file_type();
            if kind.is_dir() {
                walk(&path, out)?;
            } else if kind.is_file() {
                let name = path.to_string_lossy();
                if name.ends_with(".xml") || name.ends_with(".xml.gz") || name.ends_with(".xml.zst")
                {
                    out.files.push((path, false));
                }
            } else if kind.is_symlink() {
                *out.skipped.entry(SKIPPED_SYMLINK).or_insert(0) += 1;
            } else {
                *out.skipped.entry(SKIPPED_SPECIAL).or_insert(0) += 1;
            }
        }
        Ok(())
    }
    let mut listing = Listing::default();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|error| ImportError::Input {
            path: display_path(input),
            error,
        })?;
        if meta.is_dir() {
            walk(input, &mut listing)?;
        } else if meta.is_file() {
            listing.files.push((input.clone(), true));
        } else {
            return Err(ImportError::Input {
                path: display_path(input),
                error: io::Error::other("not a regular file"),
            });
        }
    }
    if listing.files.is_empty() {
        return Err(ImportError::NoInput(
            "no *.xml, *.xml.gz or *.xml.zst file in the inputs".into(),
        ));
    }
    Ok(listing)
}

/// Opens a file for reading and checks what was opened, not the path (`kbi_core::io`, the one
/// home of "open a regular file safely"): a name that was a regular file when listed may be a
/// FIFO (whose `open` would wait for a writer for ever) or a link by now. A link is refused
/// unless `follow` (a name given on the command line); `fstat` on the descriptor then says what
/// it is.
pub fn open_regular(path: &Path, follow: bool) -> io::Result<File> {
    let opened = if follow {
        kbi_core::io::open_regular(path)
    } else {
        kbi_core::io::open_regular_no_follow(path)
    };
    Ok(opened?)
}

/// Counts the bytes read from a file on disk: the run's total (progress, report) and the file's
/// own (the ratio guard).
struct Counting<R> {
    inner: R,
    total: Arc<AtomicU64>,
    file: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        self.file.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Why a file was refused by [`FileLimits`], carried inside an `io::Error` to the XML reader,
/// which reports it as the file's ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The decompressed stream of one file, refused past [`FileLimits`]. Handed to the XML reader as
/// this type, not boxed: one dynamic call per buffer request (the decompressor's) is enough.
pub(crate) struct Capped {
    inner: Box<dyn BufRead + Send>,
    /// Compressed bytes read from disk (`None`: not compressed, no ratio).
    compressed: Option<Arc<AtomicU64>>,
    read: u64,
    limits: FileLimits,
    /// `read` at which the bounds are checked next: every [`CHECK_EVERY`] bytes and at the cap
    /// (quick-xml asks for the buffer several times per event; the bounds need not be).
    next_check: u64,
    refused: Option<Refused>,
}

/// Decompressed bytes between two checks of the ratio.
const CHECK_EVERY: u64 = 1 << 20;

impl Capped {
    fn check(&self) -> Result<(), Refused> {
        if self.read > self.limits.max_decompressed_bytes {
            return Err(Refused(format!(
                "more than {} bytes once decompressed (--max-decompressed-bytes)",
                self.limits.max_decompressed_bytes
            )));
        }
        if let Some(compressed) = &self.compressed {
            let allowed = compressed
                .load(Ordering::Relaxed)
                .saturating_mul(self.limits.max_ratio)
                .saturating_add(RATIO_SLACK);
            if self.read > allowed {
                return Err(Refused(format!(
                    "decompresses to more than {} times its compressed size (a decompression bomb?)",
                    self.limits.max_ratio
                )));
            }
        }
        Ok(())
    }
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Capped {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some(refused) = &self.refused {
            return Err(io::Error::other(refused.clone()));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.read += amount as u64;
        self.inner.consume(amount);
        if self.read > self.next_check {
            self.refused = self.check().err();
            self.next_check = self
                .read
                .saturating_add(CHECK_EVERY)
                .min(self.limits.max_decompressed_bytes);
        }
    }
}

/// Opens one input file, decompressed as its first bytes say, bounded by `limits`.
pub(crate) fn open_input(
    path: &Path,
    follow: bool,
    total: Arc<AtomicU64>,
    limits: FileLimits,
) -> io::Result<Capped> {
    let file = open_regular(path, follow)?;
    let own = Arc::new(AtomicU64::new(0));
    let mut reader = BufReader::with_capacity(
        1 << 18,
        Counting {
            inner: file,
            total,
            file: own.clone(),
        },
    );
    let head = reader.fill_buf()?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let compressed = (compression != Compression::None).then_some(own);
    Ok(Capped {
        inner: decompress(reader, compression)?,
        compressed,
        read: 0,
        limits,
        next_check: CHECK_EVERY.min(limits.max_decompressed_bytes),
        refused: None,
    })
}
