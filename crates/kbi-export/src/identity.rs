//! Identity in a delivery (`protocols.md` section 5): the INSZ kept, removed, or replaced by a
//! keyed pseudonym.
//!
//! The pseudonym is the first 16 bytes of HMAC-SHA-256(key, the INSZ as its 11 digits), in
//! lower-case hex: stable across deliveries made with the same key (so the five years of a
//! monitoring protocol can be compared person by person) and useless without the key, which
//! never leaves the agency. The manifest names the key by its fingerprint (the first 8 bytes of
//! SHA-256 of the key), never the key.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use kbi_core::domain::Insz;
use sha2::{Digest, Sha256};

/// Length of a pseudonym key file: 32 random bytes.
pub const KEY_LEN: usize = 32;

/// Why a pseudonym key could not be read or written. Never shows key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the pseudonym key {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the pseudonym key {path} is not a key file: it must hold exactly {KEY_LEN} bytes \
         (`kbi-advice protocol keygen --pseudonym FILE` makes one)"
    )]
    Length { path: PathBuf },
    #[error(
        "{path} already exists: a pseudonym key is never overwritten (the pseudonyms of every \
         earlier delivery depend on it); choose another name"
    )]
    Exists { path: PathBuf },
    #[error("cannot write the pseudonym key {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The agency's secret pseudonym key.
#[derive(Clone)]
pub struct PseudonymKey([u8; KEY_LEN]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never appears in a log, not even by accident.
        write!(f, "PseudonymKey({})", self.fingerprint())
    }
}

type HmacSha256 = Hmac<Sha256>;

impl PseudonymKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PseudonymKey {
        PseudonymKey(bytes)
    }

    /// Reads a key file: exactly [`KEY_LEN`] bytes (read at most one byte more, so a large file
    /// named by mistake is refused without reading it).
    pub fn read(path: &Path) -> Result<PseudonymKey, KeyFileError> {
        let read_error = |error| KeyFileError::Read {
            path: path.to_path_buf(),
            error,
        };
        let file = kbi_core::io::open_regular(path).map_err(|e| read_error(e.into()))?;
        let mut bytes = Vec::with_capacity(KEY_LEN + 1);
        file.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyFileError::Length {
            path: path.to_path_buf(),
        })?;
        Ok(PseudonymKey(key))
    }

    /// Writes a new random key to `path`, mode 0600, refusing to replace any existing file.
    pub fn generate(path: &Path) -> Result<PseudonymKey, KeyFileError> {
        let mut bytes = [0u8; KEY_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                KeyFileError::Write {
                    path: path.to_path_buf(),
                    error,
                }
            }
        })?;
        let write_error = |error| KeyFileError::Write {
            path: path.to_path_buf(),
            error,
        };
        file.write_all(&bytes).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        Ok(PseudonymKey(bytes))
    }

    /// The first 8 bytes of SHA-256 of the key, hex: names the key in a manifest.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// The pseudonym of `insz`: first 16 bytes of HMAC-SHA-256(key, 11 digits), raw.
    pub fn pseudonym_bytes(&self, insz: Insz) -> [u8; 16] {
        // HMAC takes a key of any length; a 32-byte key cannot fail.
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts a key of any length");
        mac.update(&insz.digits());
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag[..16]);
        out
    }

    /// The pseudonym of `insz` in lower-case hex (32 characters).
    pub fn pseudonym(&self, insz: Insz) -> String {
        hex::encode(self.pseudonym_bytes(insz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insz(text: &str) -> Insz {
        Insz::parse(text).unwrap()
    }

    #[test]
    fn pseudonym_is_hmac_sha256_of_the_eleven_digits_truncated_to_16_bytes() {
        let key = PseudonymKey::from_bytes([7u8; KEY_LEN]);
        let person = insz("85.07.30-033.28");
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[7u8; KEY_LEN]).unwrap();
        mac.update(b"85073003328");
        let expected = hex::encode(&mac.finalize().into_bytes()[..16]);
        assert_eq!(key.pseudonym(person), expected);
        assert_eq!(key.pseudonym(person).len(), 32);
        // Written forms do not matter: the digits do.
        assert_eq!(key.pseudonym(insz("85073003328")), expected);
    }

    #[test]
    fn pseudonyms_depend_on_the_key_and_are_stable() {
        let a = PseudonymKey::from_bytes([1u8; KEY_LEN]);
        let b = PseudonymKey::from_bytes([2u8; KEY_LEN]);
        let person = insz("85073003328");
        assert_eq!(a.pseudonym(person), a.clone().pseudonym(person));
        assert_ne!(a.pseudonym(person), b.pseudonym(person));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert!(
            !format!("{a:?}").contains("0101"),
            "Debug shows only the fingerprint"
        );
    }

    #[test]
    fn a_generated_key_is_private_never_overwritten_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        let key = PseudonymKey::generate(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        let back = PseudonymKey::read(&path).unwrap();
        assert_eq!(back.fingerprint(), key.fingerprint());
        let error = PseudonymKey::generate(&path).unwrap_err();
        assert!(matches!(error, KeyFileError::Exists { .. }), "{error}");
        assert_eq!(
            PseudonymKey::read(&path).unwrap().fingerprint(),
            key.fingerprint()
        );
    }

    #[test]
    fn a_file_of_another_length_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 31, 33, 4096] {
            let path = dir.path().join(format!("k{len}"));
            std::fs::write(&path, vec![0u8; len]).unwrap();
            let error = PseudonymKey::read(&path).unwrap_err();
            assert!(
                matches!(error, KeyFileError::Length { .. }),
                "{len}: {error}"
            );
        }
    }
}
