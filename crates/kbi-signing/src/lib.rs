//! The service's Ed25519 signing key: generating, reading, signing the manifest, checking a
//! signature.
//!
//! Formats (documented in `docs/premium-list.md`): the private key is a PKCS#8 PEM file
//! (`-----BEGIN PRIVATE KEY-----`), the public key a PEM SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`, what `openssl pkey -pubout` prints), and the signature file holds
//! the base64 (standard alphabet, padded) of the 64-byte Ed25519 signature of the exact manifest
//! bytes, followed by one newline. OpenSSL can check it too:
//! `base64 -d manifest.json.sig > sig.bin && openssl pkeyutl -verify -pubin -inkey pub.pem
//! -rawin -in manifest.json -sigfile sig.bin`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why a key or signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read {what} {path}: {error}")]
    Read {
        /// "signing key", "public key".
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not the expected PEM.
    #[error("{what} {path} is not {expected}: {detail}")]
    Format {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        detail: String,
    },
    /// A key file could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Reads an Ed25519 private key from a PKCS#8 PEM file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
        what: "signing key",
        path: path.to_path_buf(),
        error,
    })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|error| KeyError::Format {
        what: "signing key",
        path: path.to_path_buf(),
        expected: "an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)",
        detail: error.to_string(),
    })
}

/// Reads an Ed25519 public key from a PEM SubjectPublicKeyInfo file.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
        what: "public key",
        path: path.to_path_buf(),
        error,
    })?;
    VerifyingKey::from_public_key_pem(&text).map_err(|error| KeyError::Format {
        what: "public key",
        path: path.to_path_buf(),
        expected: "an Ed25519 public key in PEM SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----)",
        detail: error.to_string(),
    })
}

/// The public key as PEM SubjectPublicKeyInfo.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    // Encoding a 32-byte key into a fixed DER structure cannot fail.
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// SHA-256 (hex) of the public key's DER SubjectPublicKeyInfo: names the key in the manifest,
/// the same value as `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    hex::encode(Sha256::digest(der))
}

/// The signature file's content: base64 of the 64-byte signature of `message`, then a newline.
pub fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let signature = key.sign(message);
    let mut out = base64::engine::general_purpose::STANDARD
        .encode(signature.to_bytes())
        .into_bytes();
    out.push(b'\n');
    out
}

/// Why a signature file does not vouch for a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature file is not the base64 of a 64-byte Ed25519 signature")]
    Malformed,
    #[error("the signature does not match: the manifest was changed, or signed with another key")]
    Mismatch,
}

/// Checks a signature file's content (see [`sign`]) against `message`. Strict verification:
/// refuses the malleable and small-order forms plain verification lets through.
pub fn verify(key: &VerifyingKey, message: &[u8], sig_file: &[u8]) -> Result<(), SignatureError> {
    let text = std::str::from_utf8(sig_file).map_err(|_| SignatureError::Malformed)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim_end_matches(['\n', '\r']))
        .map_err(|_| SignatureError::Malformed)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_bytes(&bytes);
    key.verify_strict(message, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The two files a key generation writes.
#[derive(Debug, Clone)]
pub struct KeyPairFiles {
    /// PKCS#8 PEM, mode 0600.
    pub private: PathBuf,
    /// PEM SubjectPublicKeyInfo, to hand to the recipients.
    pub public: PathBuf,
    /// [`key_fingerprint`] of the public key.
    pub fingerprint: String,
}

/// Generates a key pair into `dir` as `NAME.pem` (private) and `NAME.pub.pem` (public); refuses
/// to overwrite an existing file.
pub fn generate_key_pair(dir: &Path, name: &str) -> Result<KeyPairFiles, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| KeyError::Write {
            path: private.clone(),
            error: std::io::Error::other(error.to_string()),
        })?;
    let public_pem = public_key_pem(&key.verifying_key());
    // Check both names before writing either, so a refusal leaves nothing behind.
    for path in [&private, &public] {
        if path.exists() {
            return Err(KeyError::Write {
                path: path.clone(),
                error: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists (a key is never overwritten)",
                ),
            });
        }
    }
    write_new(&private, private_pem.as_bytes(), 0o600)?;
    if let Err(error) = write_new(&public, public_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&private);
        return Err(error);
    }
    Ok(KeyPairFiles {
        private,
        public,
        fingerprint: key_fingerprint(&key.verifying_key()),
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let fail = |error| KeyError::Write {
        path: path.to_path_buf(),
        error,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_detects_changes() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let sig = sign(&key, b"manifest");
        assert!(sig.ends_with(b"\n"));
        assert_eq!(verify(&key.verifying_key(), b"manifest", &sig), Ok(()));
        assert_eq!(
            verify(&key.verifying_key(), b"manifesT", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            verify(&other.verifying_key(), b"manifest", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&key.verifying_key(), b"manifest", b"not base64!\n"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&key.verifying_key(), b"manifest", b"AAAA\n"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn generated_pair_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate_key_pair(dir.path(), "k").unwrap();
        let private = read_signing_key(&files.private).unwrap();
        let public = read_public_key(&files.public).unwrap();
        assert_eq!(private.verifying_key(), public);
        assert_eq!(files.fingerprint, key_fingerprint(&public));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.private)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(generate_key_pair(dir.path(), "k").is_err());
        // A public key is not a signing key, and the error says what was expected.
        let error = read_signing_key(&files.public).unwrap_err().to_string();
        assert!(error.contains("PKCS#8"), "{error}");
    }
}
