//! `export verify`: a delivery checked as its recipient (or the agency, before sending) does:
//! the signature over the manifest first, then the encrypted file's hash, and with an age
//! identity (or the passphrase) the plaintext's hash and row count, decrypted in memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::manifest::Manifest;

/// The first thing found wrong. Never carries an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {error}")]
    Missing { path: PathBuf, error: io::Error },
    #[error("signature {path}: {error}")]
    Signature {
        path: PathBuf,
        error: kbi_signing::SignatureError,
    },
    #[error("manifest {path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error(
        "the encrypted file {path} was changed: its SHA-256 is {found}, the signed manifest says \
         {expected}"
    )]
    CiphertextHash {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("cannot decrypt {path}: {why}")]
    Decrypt { path: PathBuf, why: String },
    #[error("the decrypted file's SHA-256 is {found}, the signed manifest says {expected}")]
    PlaintextHash { found: String, expected: String },
    #[error("the decrypted file holds {found} rows, the signed manifest says {expected}")]
    Rows { found: u64, expected: u64 },
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub plaintext_checked: bool,
}

/// Verifies `manifest_path` (its signature is `manifest_path` + `.sig`, the data file is the
/// manifest's `data_file` in the same directory). With `identities`, decrypts the data file in
/// memory and checks its plaintext too.
pub fn verify(
    manifest_path: &Path,
    public_key: &VerifyingKey,
    identities: Option<&[Box<dyn age::Identity>]>,
) -> Result<Verified, VerifyError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| VerifyError::Missing {
            path: path.to_path_buf(),
            error,
        })
    };
    let mut signature_path = manifest_path.as_os_str().to_owned();
    signature_path.push(".sig");
    let signature_path = PathBuf::from(signature_path);
    let manifest_bytes = read(manifest_path)?;
    let signature = read(&signature_path)?;
    kbi_signing::verify(public_key, &manifest_bytes, &signature).map_err(|error| {
        VerifyError::Signature {
            path: signature_path.clone(),
            error,
        }
    })?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|why| VerifyError::Manifest {
        path: manifest_path.to_path_buf(),
        why,
    })?;
    // The data file is named by the signed manifest, and only by its name: never a path that
    // leads out of the delivery's directory.
    if manifest.data_file.contains('/') || manifest.data_file.starts_with('.') {
        return Err(VerifyError::Manifest {
            path: manifest_path.to_path_buf(),
            why: "data_file is not a plain file name".into(),
        });
    }
    let data_path = kbi_premium::register::parent_of(manifest_path).join(&manifest.data_file);
    let missing = |error| VerifyError::Missing {
        path: data_path.clone(),
        error,
    };
    let file = File::open(&data_path).map_err(missing)?;
    let found = kbi_premium::deliver::sha256_hex(file).map_err(missing)?;
    if found != manifest.ciphertext_sha256 {
        return Err(VerifyError::CiphertextHash {
            path: data_path,
            found,
            expected: manifest.ciphertext_sha256.clone(),
        });
    }
    let Some(identities) = identities else {
        return Ok(Verified {
            manifest,
            plaintext_checked: false,
        });
    };
    let decrypt_error = |why: String| VerifyError::Decrypt {
        path: data_path.clone(),
        why,
    };
    let file = File::open(&data_path).map_err(missing)?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file))
        .map_err(|e| decrypt_error(e.to_string()))?;
    let plaintext = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| decrypt_error(e.to_string()))?;
    let (sha, lines) = hash_and_count(plaintext).map_err(|e| decrypt_error(e.to_string()))?;
    if sha != manifest.plaintext_sha256 {
        return Err(VerifyError::PlaintextHash {
            found: sha,
            expected: manifest.plaintext_sha256.clone(),
        });
    }
    // Cells hold no line breaks (no control characters), so rows are lines after the header.
    let rows = lines.saturating_sub(1);
    if rows != manifest.rows {
        return Err(VerifyError::Rows {
            found: rows,
            expected: manifest.rows,
        });
    }
    Ok(Verified {
        manifest,
        plaintext_checked: true,
    })
}

fn hash_and_count(input: impl Read) -> io::Result<(String, u64)> {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut hasher = Sha256::new();
    let mut lines = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        hasher.update(buffer);
        lines += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        let n = buffer.len();
        reader.consume(n);
    }
    Ok((hex::encode(hasher.finalize()), lines))
}
