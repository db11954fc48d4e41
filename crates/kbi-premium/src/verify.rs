//! Checking a delivered list, as the recipient (or the agency, before sending) does: the
//! signature over the manifest, the hash of the encrypted file, and with an age identity the
//! decrypted list itself (in memory, as a stream): hash, header, INSZ validity, order, count.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::list::{self, ListError};
use super::manifest::Manifest;
use super::{list_file_name, manifest_file_name, signature_file_name};
use kbi_core::domain::advice::premium_reference_date;
use kbi_signing::SignatureError;

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub manifest: Manifest,
    /// Whether the list was decrypted and checked (an identity was given).
    pub plaintext_checked: bool,
}

/// The first thing found wrong. Never carries an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {error}")]
    Missing {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("signature {path}: {error}")]
    Signature {
        path: PathBuf,
        error: SignatureError,
    },
    #[error("manifest {path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error("manifest is signed but {what} is {found}, expected {expected}")]
    Mismatch {
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error(
        "the encrypted list {path} was changed: its SHA-256 is {found}, the signed manifest says \
         {expected}"
    )]
    CiphertextHash {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("cannot decrypt {path}: {why}")]
    Decrypt { path: PathBuf, why: String },
    #[error("the decrypted list is not valid: {0}")]
    List(#[from] ListError),
    #[error("the decrypted list's SHA-256 is {found}, the signed manifest says {expected}")]
    PlaintextHash { found: String, expected: String },
    #[error("the decrypted list holds {found} INSZ, the signed manifest says {expected}")]
    Count { found: u64, expected: u64 },
}

/// Reads the age identities (`AGE-SECRET-KEY-1…` lines, as `age-keygen` writes) of a file.
pub fn read_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, String> {
    let file = age::IdentityFile::from_file(path.display().to_string())
        .map_err(|e| format!("cannot read age identity file {}: {e}", path.display()))?;
    let identities = file
        .into_identities()
        .map_err(|e| format!("age identity file {}: {e}", path.display()))?;
    if identities.is_empty() {
        return Err(format!(
            "age identity file {} holds no identity",
            path.display()
        ));
    }
    Ok(identities)
}

fn read(path: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(path).map_err(|error| VerifyError::Missing {
        path: path.to_path_buf(),
        error,
    })
}

/// Verifies the files of `premium_year` in `dir` against `public_key`; with `identities`, also
/// decrypts and checks the list.
pub fn verify(
    dir: &Path,
    premium_year: i32,
    public_key: &VerifyingKey,
    identities: Option<&[Box<dyn age::Identity>]>,
) -> Result<VerifyReport, VerifyError> {
    let manifest_path = dir.join(manifest_file_name(premium_year));
    let signature_path = dir.join(signature_file_name(premium_year));
    let list_path = dir.join(list_file_name(premium_year));

    // Origin and integrity of the manifest first: nothing in it is trusted before.
    let manifest_bytes = read(&manifest_path)?;
    let signature = read(&signature_path)?;
    kbi_signing::verify(public_key, &manifest_bytes, &signature).map_err(|error| {
        VerifyError::Signature {
            path: signature_path.clone(),
            error,
        }
    })?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|why| VerifyError::Manifest {
        path: manifest_path.clone(),
        why,
    })?;
    let expect = |what, found: String, expected: String| {
        if found == expected {
            Ok(())
        } else {
            Err(VerifyError::Mismatch {
                what,
                found,
                expected,
            })
        }
    };
    expect(
        "premium_year",
        manifest.basis.premium_year.to_string(),
        premium_year.to_string(),
    )?;
    expect(
        "reference_date",
        manifest.basis.reference_date.clone(),
        premium_reference_date(premium_year).to_string(),
    )?;
    expect(
        "list_file",
        manifest.list_file.clone(),
        list_file_name(premium_year),
    )?;

    // The encrypted file is the one the manifest describes.
    let found = sha256_of_file(&list_path)?;
    if found != manifest.hashes.ciphertext_sha256 {
        return Err(VerifyError::CiphertextHash {
            path: list_path,
            found,
            expected: manifest.hashes.ciphertext_sha256.clone(),
        });
    }

    let Some(identities) = identities else {
        return Ok(VerifyReport {
            manifest,
            plaintext_checked: false,
        });
    };
    let decrypt_error = |why: String| VerifyError::Decrypt {
        path: list_path.clone(),
        why,
    };
    let file = File::open(&list_path).map_err(|error| VerifyError::Missing {
        path: list_path.clone(),
        error,
    })?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file))
        .map_err(|e| decrypt_error(e.to_string()))?;
    let plaintext = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref()))
        .map_err(|e| decrypt_error(e.to_string()))?;
    let summary = list::check(BufReader::with_capacity(64 * 1024, plaintext))?;
    if summary.sha256 != manifest.hashes.plaintext_sha256 {
        return Err(VerifyError::PlaintextHash {
            found: summary.sha256,
            expected: manifest.hashes.plaintext_sha256.clone(),
        });
    }
    if summary.count != manifest.basis.count {
        return Err(VerifyError::Count {
            found: summary.count,
            expected: manifest.basis.count,
        });
    }
    Ok(VerifyReport {
        manifest,
        plaintext_checked: true,
    })
}

fn sha256_of_file(path: &Path) -> Result<String, VerifyError> {
    let missing = |error| VerifyError::Missing {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(missing)?;
    crate::deliver::sha256_hex(file).map_err(missing)
}
