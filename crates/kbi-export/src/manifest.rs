//! The manifest of a protocol delivery (`protocols.md` section 6): what the file is, under which
//! protocol, what it rests on, and the hashes that bind it to the encrypted file. Signed as its
//! exact bytes (Ed25519, the yearly list's key and format), so written once, never re-serialised.
//! It never holds an INSZ, a pseudonym, the pseudonym key or a passphrase.

use serde::{Deserialize, Serialize};

/// The `format` value of every export manifest.
pub const FORMAT: &str = "kbi-protocol-export";
/// The manifest format this program writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `kbi-dossier-01.00`.
    pub format: String,
    /// Input files read.
    pub files: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Dossiers accepted by the reader.
    pub dossiers: u64,
}

/// A join file used, described without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinSource {
    pub name: String,
    /// Rows in the file.
    pub rows: u64,
    /// Rows whose INSZ is a row of the delivery.
    pub matched: u64,
    /// SHA-256 of the file as given (encrypted or not).
    pub file_sha256: String,
}

/// Small-cell suppression as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub min_group: u32,
    pub quasi_identifiers: Vec<String>,
    pub rows: u64,
    pub cells: u64,
}

/// `<protocol>-<file>-<period>.manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    pub protocol: String,
    pub file: String,
    /// `yearly`, `six-monthly`, `monthly`, `on-demand`.
    pub period: String,
    /// `2026`, `2026-H2`, `2026-12`; none for an on-demand delivery.
    pub period_key: Option<String>,
    /// `YYYY-MM-DD`.
    pub reference_date: String,
    /// The population filters, as in the protocol.
    pub population: Vec<String>,
    /// The fields, in the protocol's (and the file's) order.
    pub fields: Vec<String>,
    /// The CSV header, in the same order (`join:vdab.x` is written `vdab.x`).
    pub header: Vec<String>,
    /// `insz`, `removed`, `pseudonym`.
    pub identity: String,
    /// First 8 bytes of SHA-256 of the pseudonym key, hex (identity `pseudonym` only).
    pub pseudonym_key_fingerprint: Option<String>,
    pub suppression: Option<Suppression>,
    /// Rows in the file (the header not counted).
    pub rows: u64,
    pub data_file: String,
    /// SHA-256 (hex) of the plaintext CSV.
    pub plaintext_sha256: String,
    /// SHA-256 (hex) of the encrypted file, exactly as written.
    pub ciphertext_sha256: String,
    /// `recipients` or `passphrase`.
    pub encryption: String,
    /// The age recipients (public keys) for `recipients`; empty for `passphrase`.
    pub recipients: Vec<String>,
    pub retention_years: Option<u32>,
    pub source: Source,
    pub joins: Vec<JoinSource>,
    /// The rule set's version (when the population asks the rules).
    pub rule_set: Option<String>,
    /// SHA-256 (hex) of the DER SubjectPublicKeyInfo of the key that signs this manifest.
    pub signing_key_sha256: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub program: kbi_premium::manifest::Program,
}

impl Manifest {
    /// The bytes written and signed: pretty JSON and a final newline (as the yearly list's).
    pub fn to_bytes(&self) -> Vec<u8> {
        kbi_premium::manifest::signed_bytes(self)
    }

    /// Reads a manifest; refuses another format or an unknown version.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        kbi_premium::manifest::parse_versioned(
            bytes,
            "export manifest",
            (FORMAT, FORMAT_VERSION),
            |m: &Manifest| (m.format.as_str(), m.format_version),
        )
    }
}

/// One protocol delivery in the export register (the yearly list's register, its own kind of
/// line: `protocol`, `file`, `period` instead of `premium_year`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    pub time: String,
    pub protocol: String,
    pub file: String,
    /// The period key (`2026-H2`); none for on-demand.
    pub period: Option<String>,
    pub reference_date: String,
    pub rows: u64,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    pub manifest_sha256: String,
    pub data_file: String,
    pub out_dir: String,
    pub operator: String,
    pub forced: bool,
    pub reason: Option<String>,
    pub program_version: String,
}
