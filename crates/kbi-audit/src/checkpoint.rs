//! Signed audit checkpoints (`security-and-audit.md`, Audit checkpoints), as Certificate
//! Transparency signs its tree heads: at an interval, at every segment rotation and when the log
//! closes, the writer appends to `audit.checkpoints` one JSON line naming the last durable record
//! (`seq`, its line hash, the segment holding it, the time) with an Ed25519 signature over those
//! facts.
//!
//! Why: the hash chain shows any change *inside* the chain, but a record cut off the end (or the
//! live segment truncated, or its last record edited) leaves a shorter chain that is still whole.
//! A checkpoint vouches for the chain up to its `seq`: `audit verify` reports any record missing,
//! changed or added up to the latest checkpoint, and how many records follow it unanchored.
//!
//! Signed message (exact bytes, UTF-8, each line ending in `\n`), format 2 (`"v":2` in the
//! line): `kbi-advice audit checkpoint v2`, `seq N`, `hash H`, `time T`, `segment S`, `key K`.
//! The signature is the base64 of the 64-byte Ed25519 signature; `key` is the SHA-256 of the
//! public key's DER (the fingerprint `premium-list keygen` and `audit keygen` print), covered by
//! the signature so that an edited `key` field breaks it.
//!
//! Format 1 (no `v` field, written before): the same message headed `… v1` and without the `key`
//! line, so its `key` field was not signed. Such checkpoints are still checked (their signature
//! under the key used); `audit verify` says how many it met.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::AuditError;
use kbi_signing as signing;

/// The checkpoint file in the audit directory.
pub const CHECKPOINT_FILE: &str = "audit.checkpoints";
/// Base name of a key generated into the audit directory (`checkpoint-key.pem`, private, and
/// `checkpoint-key.pub.pem`, public). The public key is always copied there under this name, so
/// that `audit verify --dir` finds it.
pub(crate) const KEY_NAME: &str = "checkpoint-key";

/// The public key file `audit verify --dir` uses unless told otherwise.
pub fn default_public_key(dir: &Path) -> PathBuf {
    dir.join(format!("{KEY_NAME}.pub.pem"))
}

/// The checkpoint format this writer writes.
pub const FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// One line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format: 2 (the key signed) or 1 (older lines without the field: the key not signed).
    #[serde(default = "format_1")]
    pub v: u32,
    /// `seq` of the last record vouched for.
    pub seq: u64,
    /// Lowercase hex SHA-256 of that record's line (what the next record carries in `prev`).
    pub hash: String,
    /// When the checkpoint was made (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The segment file holding record `seq`.
    pub segment: String,
    /// Fingerprint of the signing key's public key.
    pub key: String,
    /// Base64 Ed25519 signature of [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes signed: format 2 covers the key; format 1 did not. Any other format is
    /// signed by nobody (`None`).
    pub fn message(&self) -> Option<Vec<u8>> {
        let (seq, hash, time, segment) = (self.seq, &self.hash, &self.time, &self.segment);
        match self.v {
            1 => Some(
                format!(
                    "kbi-advice audit checkpoint v1\nseq {seq}\nhash {hash}\ntime {time}\n\
                     segment {segment}\n"
                )
                .into_bytes(),
            ),
            2 => Some(
                format!(
                    "kbi-advice audit checkpoint v2\nseq {seq}\nhash {hash}\ntime {time}\n\
                     segment {segment}\nkey {}\n",
                    self.key
                )
                .into_bytes(),
            ),
            _ => None,
        }
    }

    /// Whether `key` signed this checkpoint.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), CheckError> {
        let message = self.message().ok_or(CheckError::Format(self.v))?;
        if self.v >= 2 && self.key != signing::key_fingerprint(key) {
            // The signed key line names another key: not this key's checkpoint, whatever the
            // signature says.
            return Err(CheckError::OtherKey);
        }
        signing::verify(key, &message, self.signature.as_bytes()).map_err(CheckError::Signature)
    }
}

/// Why a checkpoint is not one signed by a key.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown checkpoint format v{0}")]
    Format(u32),
    #[error("the checkpoint names another signing key")]
    OtherKey,
    #[error(transparent)]
    Signature(signing::SignatureError),
}

/// The writer's side: the key and the open checkpoint file.
pub(crate) struct Checkpointer {
    key: SigningKey,
    fingerprint: String,
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    /// `seq` of the last checkpoint written (or found on open).
    pub(crate) last_seq: u64,
}

impl Checkpointer {
    /// Loads the key (`key_path`, or the key generated into `dir`, generating it on first use)
    /// and finds the last checkpoint written.
    pub(crate) fn open(dir: &Path, key_path: Option<&Path>) -> Result<Checkpointer, AuditError> {
        let key_error = |path: &Path, error: signing::KeyError| AuditError::Corrupt {
            path: path.to_path_buf(),
            line: None,
            detail: format!("checkpoint key: {error}"),
        };
        let key = match key_path {
            Some(path) => signing::read_signing_key(path).map_err(|e| key_error(path, e))?,
            None => {
                let private = dir.join(format!("{KEY_NAME}.pem"));
                if !private.exists() {
                    // Only ever a copy this writer made of an earlier key's public half.
                    let _ = std::fs::remove_file(default_public_key(dir));
                    let files = signing::generate_key_pair(dir, KEY_NAME)
                        .map_err(|e| key_error(&private, e))?;
                    tracing::warn!(
                        key = %files.private.display(),
                        fingerprint = %files.fingerprint,
                        "audit checkpoints: no audit.checkpoint_key configured; generated one in \
                         the audit directory. Whoever can edit the log can read this key: \
                         configure a key kept apart (`kbi-advice audit keygen`) and copy the \
                         checkpoints off the host"
                    );
                }
                signing::read_signing_key(&private).map_err(|e| key_error(&private, e))?
            }
        };
        let public = key.verifying_key();
        let fingerprint = signing::key_fingerprint(&public);
        // The public key beside the log, for `audit verify --dir`.
        let public_path = default_public_key(dir);
        let pem = signing::public_key_pem(&public);
        if std::fs::read_to_string(&public_path).ok().as_deref() != Some(pem.as_str()) {
            if public_path.exists() {
                tracing::warn!(
                    file = %public_path.display(),
                    fingerprint = %fingerprint,
                    "audit checkpoints: the checkpoint key changed; replacing the public key \
                     beside the log (checkpoints signed before stay checkable with the old one)"
                );
            }
            std::fs::write(&public_path, pem.as_bytes())
                .map_err(|e| AuditError::io(&public_path, "write", e))?;
        }
        let path = dir.join(CHECKPOINT_FILE);
        // Only checkpoints this key really signed count: a planted line must not move the
        // writer's sequence numbers (the log resumes after the latest checkpoint).
        let last_seq = read_checkpoints(&path)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|(_, checkpoint)| checkpoint.ok())
            .filter(|checkpoint| checkpoint.check(&public).is_ok())
            .map(|checkpoint| checkpoint.seq)
            .max()
            .unwrap_or(0);
        Ok(Checkpointer {
            key,
            fingerprint,
            dir: dir.to_path_buf(),
            path,
            file: None,
            last_seq,
        })
    }

    /// Appends and syncs a checkpoint for record `seq` (line hash `hash`, in `segment`).
    pub(crate) fn write(
        &mut self,
        seq: u64,
        hash: &[u8; 32],
        segment: &str,
    ) -> Result<(), AuditError> {
        let mut checkpoint = Checkpoint {
            v: FORMAT,
            seq,
            hash: hex::encode(hash),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            segment: segment.to_owned(),
            key: self.fingerprint.clone(),
            signature: String::new(),
        };
        let message = checkpoint.message().unwrap_or_default();
        let signature = signing::sign(&self.key, &message);
        checkpoint.signature = String::from_utf8_lossy(&signature).trim_end().to_owned();
        let mut line = serde_json::to_vec(&checkpoint).map_err(|e| AuditError::Corrupt {
            path: self.path.clone(),
            line: None,
            detail: format!("cannot serialise a checkpoint: {e}"),
        })?;
        line.push(b'\n');
        if self.file.is_none() {
            let created = !self.path.exists();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(super::log::PRIVATE_FILE)
                .open(&self.path)
                .and_then(super::log::private_file)
                .map_err(|e| AuditError::io(&self.path, "open", e))?;
            if created {
                super::log::sync_dir(&self.dir)
                    .map_err(|e| AuditError::io(&self.dir, "sync", e))?;
            }
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(AuditError::Stopped);
        };
        let written = file.write_all(&line).and_then(|_| file.sync_data());
        if let Err(error) = written {
            // Reopen next time; a torn checkpoint line is reported by `audit verify` and
            // skipped by the writer (only whole, signed lines count).
            self.file = None;
            return Err(AuditError::io(&self.path, "write", error));
        }
        self.last_seq = seq;
        Ok(())
    }
}

/// The lines of a checkpoint file: 1-based line number and the checkpoint, or why the line is
/// not one.
pub(crate) fn read_checkpoints(
    path: &Path,
) -> std::io::Result<Vec<(u64, Result<Checkpoint, String>)>> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let parsed = serde_json::from_slice::<Checkpoint>(&line)
            .map_err(|e| super::mask_numbers(&e.to_string()));
        out.push((index as u64 + 1, parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_signed_and_any_change_shows() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Checkpointer::open(dir.path(), None).unwrap();
        writer.write(7, &[3; 32], "audit-2026-03-01.jsonl").unwrap();
        let public = signing::read_public_key(&default_public_key(dir.path())).unwrap();
        let lines = read_checkpoints(&dir.path().join(CHECKPOINT_FILE)).unwrap();
        let checkpoint = lines[0].1.clone().unwrap();
        assert_eq!(checkpoint.seq, 7);
        checkpoint.check(&public).unwrap();
        let mut changed = checkpoint.clone();
        changed.seq = 8;
        assert!(changed.check(&public).is_err());
        let mut changed = checkpoint;
        changed.hash = hex::encode([4; 32]);
        assert!(changed.check(&public).is_err());
        // Reopened, the writer knows where it stands and reuses the generated key.
        let again = Checkpointer::open(dir.path(), None).unwrap();
        assert_eq!(again.last_seq, 7);
        assert_eq!(again.fingerprint, signing::key_fingerprint(&public));
    }
}
