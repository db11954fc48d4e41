//! The legal audit log (`security-and-audit.md`, Audit log): one JSON line per answered
//! question, durable before the answer leaves, hash-chained so that any change shows.
//!
//! - [`AuditRecord`] — the line format ([`record`]);
//! - [`AuditLog`] — the durable writer: preallocated segments, pipelined group commit
//!   ([`log`]);
//! - [`Checkpoint`] — signed checkpoints anchoring the end of the chain ([`checkpoint`]);
//! - [`verify()`] and [`search()`] — the offline checks behind `kbi-advice audit` ([`verify`]).
//!
//! This is the only place an INSZ is written in clear: errors and log lines of this module name
//! files, line numbers and sequence numbers, never record contents. `docs/security.md` documents
//! the format and the decisions (torn tail, failures, midnight).

pub mod checkpoint;
pub mod log;
pub mod record;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use checkpoint::{Checkpoint, CHECKPOINT_FILE};
pub use log::{AppendReceipt, AuditLog, AuditObserver, AuditOptions, AuditStats};
pub use record::{AuditOutcome, AuditRecord, RequestCtx, GENESIS_PREV};
pub use verify::{
    files_in, search, verify, verify_anchored, Anchors, CheckpointReport, Problem, ProblemKind,
    Report, SearchResult,
};

use kbi_core::domain::ErrorCode;

/// Why the audit log could not do its job. Never contains an INSZ.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed (permission, disk full, file size limit, I/O error).
    #[error("audit log {}: cannot {op}: {cause}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        cause: Arc<std::io::Error>,
    },
    /// The files on disk are not what the log wrote.
    #[error("audit log {}{}: {detail}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Corrupt {
        path: PathBuf,
        line: Option<u64>,
        detail: String,
    },
    /// Another process holds the directory's lock.
    #[error("audit directory {} is in use by another process (lock held on {})", path.display(), log::LOCK_FILE)]
    Locked { path: PathBuf },
    /// The writer thread is gone.
    #[error("the audit writer has stopped")]
    Stopped,
}

impl AuditError {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            op,
            cause: Arc::new(source),
        }
    }

    /// The catalogue code of an answer that could not be audited (30021, HTTP 503).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::AuditUnavailable
    }
}

/// Replaces every run of digits (with the separators an INSZ may be written with) holding nine
/// or more digits by `***`: parser messages may quote a value, and a value may be an INSZ.
pub(crate) fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut digits = 0;
    let flush = |out: &mut String, run: &mut String, digits: &mut usize| {
        if *digits >= 9 {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
        *digits = 0;
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            digits += 1;
        } else if !run.is_empty() && matches!(c, '.' | '-' | ' ') {
            run.push(c);
        } else {
            flush(&mut out, &mut run, &mut digits);
            out.push(c);
        }
    }
    flush(&mut out, &mut run, &mut digits);
    out
}

#[cfg(test)]
mod tests {
    use super::mask_numbers;

    #[test]
    fn masking_hides_insz_but_keeps_small_numbers() {
        assert_eq!(
            mask_numbers("invalid type: integer `85073003328`, line 1 column 42"),
            "invalid type: integer `***`, line 1 column 42"
        );
        assert_eq!(mask_numbers("x \"85.07.30-033.28\" y"), "x \"***\" y");
        assert_eq!(mask_numbers("date 2026-01-01 ok"), "date 2026-01-01 ok");
    }
}
